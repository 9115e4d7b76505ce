"""Pure task code: pre- and post-processing of the three tasks, sampling and stop strings. No LitServe, no HTTP.

The task names are the artifact directories' and the settings' (`RNNSERVE_WORKERS_GENERATE` is the exception,
kept for compatibility); `ENDPOINTS` maps each to its URL path.
"""

TASKS = ("charlm", "sentiment", "ner")
ENDPOINTS = {"charlm": "/generate", "sentiment": "/sentiment", "ner": "/ner"}
