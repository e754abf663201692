"""Hashing untrusted input in worker processes with time and memory limits: a file that
crashes, hangs or exhausts memory in a decoder costs only its own outcome. Results cross
the pipes as JSON (no pickle). Every front end hashes through here when asked to isolate:
scan, hash, the API (``Matcher(isolate=True)``) and the service.

    workers.py     HashJob, WorkerPool (scans), the worker process and its JSON protocol,
                   its limits (memory, CPU) and its death with its parent
    isolated.py    IsolatedHasher: single inputs (API, hash --timeout, the service), with a
                   size-based time allowance or a fixed budget nothing in the file can raise
    forkserver.py  the multiprocessing context the workers start from

May import: hashmatch.signals, hashmatch.video, hashmatch.decode and the layers below.
"""
