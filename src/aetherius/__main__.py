from aetherius.cli import main

main()
