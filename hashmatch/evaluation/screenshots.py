"""Screenshot-style frames around a picture, for measuring embedded-picture matching: a
phone app showing the picture in a feed (status bar, header, caption, buttons, part of
the next post), a browser page (tabs, address bar, text beside the picture) and a
picture pasted into a larger canvas. Sizes, colours, texts and positions are drawn from
the transform's rng, so every run builds the same frames. Nothing here reads a real
screenshot: the UI is drawn."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

#: Words of the captions, watermarks and UI texts the transforms draw.
WORDS = ("shared", "from", "my", "phone", "look", "at", "this", "lol", "repost", "original",
         "credit", "to", "the", "owner", "best", "day", "ever", "wow", "new", "pic", "2024",
         "follow", "for", "more", "@user", "#nofilter", "via", "forum", "group", "chat")

_LIGHT, _DARK = ((250, 250, 250), (20, 20, 20)), ((18, 18, 18), (235, 235, 235))


def _words(rng: np.random.Generator, count: int) -> str:
    return " ".join(str(rng.choice(WORDS)) for _ in range(count))


def _font(size: float) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(8, round(size)))


def phone(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A phone screenshot (9:19.5) of a feed post: the picture at the screen's width (or
    inset by a margin), between the app's chrome and the post's text."""
    picture = image.convert("RGB")
    width = int(rng.choice((720, 1080)))
    height = round(width * 19.5 / 9)
    background, ink = _LIGHT if rng.random() < 0.6 else _DARK
    screen = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(screen)
    unit = width / 36
    draw.rectangle((0, 0, width, round(unit * 2.2)), fill=background)  # status bar: time, battery
    draw.text((unit, unit * 0.5), "9:41", font=_font(unit * 1.1), fill=ink)
    draw.rectangle((width - unit * 4, unit * 0.6, width - unit, unit * 1.5), outline=ink)
    header = round(unit * 6.5)
    draw.ellipse((unit, unit * 3.2, unit * 4, unit * 6.2), fill=tuple(int(c) for c in rng.integers(60, 200, 3)))
    draw.text((unit * 5, unit * 3.8), str(rng.choice(WORDS)) + "_" + str(rng.choice(WORDS)), font=_font(unit * 1.2),
              fill=ink)
    margin = 0 if rng.random() < 0.6 else round(unit * rng.uniform(0.5, 1.5))
    shown_w = width - 2 * margin
    shown_h = min(round(picture.height * shown_w / picture.width), round(height * 0.6))
    shown_w = round(picture.width * shown_h / picture.height)
    left = (width - shown_w) // 2
    screen.paste(picture.resize((shown_w, shown_h), Image.Resampling.LANCZOS), (left, header))
    y = header + shown_h + round(unit)
    for x in range(3):  # like, comment, share
        draw.ellipse((unit + x * unit * 3, y, unit * 3 + x * unit * 3, y + unit * 2), outline=ink, width=2)
    y += round(unit * 3)
    for _ in range(int(rng.integers(2, 5))):
        draw.text((unit, y), _words(rng, int(rng.integers(4, 9))), font=_font(unit * 1.1), fill=ink)
        y += round(unit * 1.8)
    if y + unit * 8 < height:  # the top of the next post
        draw.ellipse((unit, y + unit, unit * 4, y + unit * 4), fill=(150, 150, 150))
        draw.rectangle((0, y + unit * 5, width, height), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    return screen


def browser(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A desktop browser screenshot (16:10): tabs, address bar, a page with the picture in
    its column and text beside it."""
    picture = image.convert("RGB")
    width = int(rng.choice((1280, 1440, 1920)))
    height = width * 10 // 16
    screen = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(screen)
    unit = width / 120
    draw.rectangle((0, 0, width, round(unit * 7)), fill=(222, 225, 230))  # tabs and address bar
    draw.rectangle((unit * 2, unit * 0.8, unit * 24, unit * 3.2), fill=(255, 255, 255))
    draw.text((unit * 3, unit * 1.2), _words(rng, 3), font=_font(unit * 1.2), fill=(40, 40, 40))
    draw.rounded_rectangle((unit * 8, unit * 4, width - unit * 8, unit * 6.3), radius=unit, fill=(255, 255, 255))
    draw.text((unit * 9, unit * 4.4), "https://forum.example/" + str(rng.choice(WORDS)), font=_font(unit * 1.1),
              fill=(60, 60, 60))
    top = round(unit * rng.uniform(10, 16))
    left = round(width * rng.uniform(0.08, 0.3))
    shown_w = round(width * rng.uniform(0.35, 0.55))
    shown_h = round(picture.height * shown_w / picture.width)
    if top + shown_h > height - unit * 2:
        shown_h = round(height - unit * 2 - top)
        shown_w = round(picture.width * shown_h / picture.height)
    screen.paste(picture.resize((shown_w, shown_h), Image.Resampling.LANCZOS), (left, top))
    x = left + shown_w + round(unit * 3)
    for line in range(int((height - top) / (unit * 2.2)) - 1):  # the article beside the picture
        draw.text((x, top + line * unit * 2.2), _words(rng, 6), font=_font(unit * 1.2), fill=(30, 30, 30))
    draw.text((left, top - unit * 3), _words(rng, 5).capitalize(), font=_font(unit * 1.8), fill=(0, 0, 0))
    return screen


def canvas(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The picture pasted at 50-85% of a larger canvas's width, anywhere on a uniform or
    gradient background (a meme template, a collage page, a slide)."""
    picture = image.convert("RGB")
    scale = rng.uniform(0.5, 0.85)
    width, height = round(picture.width / scale), round(picture.height / scale * rng.uniform(0.9, 1.3))
    top_colour, bottom_colour = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0, 1, height)[:, None, None] if rng.random() < 0.5 else np.zeros((height, 1, 1))
    ground = (top_colour * (1 - ramp) + bottom_colour * ramp).astype(np.uint8)
    screen = Image.fromarray(np.broadcast_to(ground, (height, width, 3)).copy())
    x = int(rng.integers(0, width - picture.width + 1))
    y = int(rng.integers(0, max(1, height - picture.height + 1)))
    screen.paste(picture, (x, y))
    if rng.random() < 0.5:
        ImageDraw.Draw(screen).text((width * 0.05, height * 0.02), _words(rng, 4).upper(),
                                    font=_font(height * 0.05), fill=(255, 255, 255))
    return screen
