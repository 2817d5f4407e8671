"""The Reasoning Service: an LLM investigator over the read-only Execution Gateway (docs/reasoning.md).

Optional and off by default; the rules answer first. Everything sent to a model goes through the
scrubber and, unless disabled, stable pseudonyms; every read is audited with the investigation id.
"""
