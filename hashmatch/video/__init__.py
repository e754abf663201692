"""Video: decoding with PyAV (the optional extra ``hashmatch[video]``), Meta's vPDQ, and
matching a video's frames against listed videos.

    decode.py     opening a video safely: container allowlist, caps, frame selection
    vpdq.py       vPDQ frame hashing and its two serialisations
    matching.py   python-threatexchange's vPDQ match rule over the Hamming engines
    synthetic.py  benign generated videos and the transforms a re-upload goes through
"""
