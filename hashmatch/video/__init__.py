"""Video: decoding with PyAV (the optional extra ``hashmatch[video]``), Meta's vPDQ, and
matching a video's frames against listed videos.

    decode.py     opening a video safely: container allowlist, caps, frame selection
    vpdq.py       vPDQ frame hashing and its two serialisations
    matching.py   python-threatexchange's vPDQ match rule over the Hamming engines
    synthetic.py  benign generated videos and the transforms a re-upload goes through
"""

#: python-threatexchange's vPDQ match rule: a listed video matches at query match >= 80%
#: and compared match >= 0% (video/matching.py; here so the CLI's defaults load nothing).
DEFAULT_QUERY_PERCENT = 80.0
DEFAULT_COMPARED_PERCENT = 0.0
