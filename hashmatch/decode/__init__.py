"""The one door for untrusted bytes: a path, bytes, a file object, a PIL image or an array
becomes decoded pixels or frames under caps, or a typed ImageError. Pillow and PyAV open
data nowhere else.

    image.py       reading under byte caps (exact digests on the way), format sniffing and
                   the allowlist, Pillow restricted to the sniffed format, pixel caps
    jpeg_check.py  the libjpeg warnings Pillow swallows (cut short, EOI appended, corrupt)
    jpeg_fast.py   the fast JPEG path (simplejpeg, warnings as errors)
    video.py       opening a video with PyAV: container allowlist, duration caps, frames
    borders.py     finding and cutting uniform borders (letterbox bars, frames, margins),
                   and bars constant over a whole video
    pictures.py    finding a picture inside a larger frame (screenshots, canvases)
    zoom_out.py    padding a picture back out for an assumed crop (crop-robust variants)

May import: hashmatch.errors, hashmatch.config, hashmatch.base.
"""
