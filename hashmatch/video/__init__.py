"""Video signals (the optional extra ``hashmatch[video]``): Meta's vPDQ over the frames
decode/video.py opens with PyAV, and python-threatexchange's rule for matching a video's
frames against listed videos.

    vpdq.py       vPDQ frame hashing and its two serialisations
    matching.py   the vPDQ match rule (query and compared percentages) over frame hits

May import: hashmatch.decode, hashmatch._native and the layers below.
(Generated test videos live in evaluation/synthetic_video.py.)
"""

#: python-threatexchange's vPDQ match rule: a listed video matches at query match >= 80%
#: and compared match >= 0% (video/matching.py; here so the CLI's defaults load nothing).
DEFAULT_QUERY_PERCENT = 80.0
DEFAULT_COMPARED_PERCENT = 0.0
