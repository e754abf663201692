"""Measuring hashmatch: throughput (``hashmatch bench``) and detection quality
(``hashmatch evaluate``) on benign images and videos it generates.

    bench.py            hashing, matching and scan throughput on generated data
    evaluate.py         recall and false matches of each algorithm under transforms
    transforms.py       the edits a re-upload goes through (crops, resizes, re-encodes, ...)
    synthetic.py        benign generated scenes (images)
    synthetic_video.py  benign generated videos and their re-upload transforms
    video_measure.py    vPDQ recall and agreement with Meta's vpdq on generated videos

May import: hashmatch.scan and the layers below.
"""
