"""Hashing untrusted input in worker processes with time and memory limits: a file that
crashes, hangs or exhausts memory in a decoder costs only its own outcome. Results cross
the pipes as JSON (no pickle). Every front end hashes through here when asked to isolate:
scan, hash, the API (``Matcher(isolate=True)``) and the service.

    workers.py     HashJob, WorkerPool (scans), IsolatedHasher (single calls), the JSON protocol
    forkserver.py  the multiprocessing context the workers start from

May import: hashmatch.signals, hashmatch.video, hashmatch.decode and the layers below.
"""
