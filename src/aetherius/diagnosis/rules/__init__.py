"""Root-cause rules: turn the words Kubernetes and programs write into a ``root_cause``.

Each module classifies one kind of text (container logs, scheduler messages, image pull errors,
kubelet config and mount errors); analyzers decide *what* is observed and ask these *why*.
"""
