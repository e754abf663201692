"""The store: a folder of versioned hash lists, each state a checksummed generation
(manifest + SQLite + code arrays + multi-index tables), changed in O(change) overlays.

    store.py      Store: open (verifying every file), read, and every change as a new generation
    files.py      the generation's files: paths, checksums, locks, loading code arrays
    manifest.py   the manifest (checksums, generation, rollback high-water mark)
    importer.py   a parsed list's changes (additions, retractions) as SQL on a generation
    writer.py     writing one generation: full copy or overlay, then the atomic manifest
    overlay.py    when a change fits an overlay, and how a base and its overlay combine
    list_files.py importing a list file (CLI, service): read in parts, named and versioned
    audit.py      the store's audit log: a generation committed without its line is recorded

May import: hashmatch.lists, hashmatch.index, hashmatch.signals and the layers below.
"""
