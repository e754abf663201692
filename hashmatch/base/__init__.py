"""What every layer may use: writing sensitive files (0600, atomic, fsync'd; append-only
JSON lines) and naming who did it.

    files.py   temp_file, atomic_write, append_jsonl, make_private_dirs, who

May import: hashmatch.errors, hashmatch.config.
"""
