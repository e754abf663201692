"""Scanning trees of files: the job behind ``hashmatch scan`` and, for one upload, the row
the service answers with.

    scanner.py        walk -> hash (isolated workers) -> match -> report; resume
    walk.py           the input files named on a command line, folders expanded
    report.py         JSONL and CSV reports: one row per file, written as known; resume reading
    dask_executor.py  the same scan spread over a Dask cluster (JSON between processes)

May import: hashmatch.matching and the layers below.
"""
