"""kyoten.common: the few helpers every part needs, importing no other kyoten part.

Only what must be the same everywhere lives here: secret redaction (``redact``), the one
settings validator (``schema``) and the command-line convention (``cli``); each part keeps its
own logic in its own folder.
"""
