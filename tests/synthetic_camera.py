"""Camera-like test material: dark-ink digits on unevenly lit paper, as a webcam sees them.

Used by the tests and by benchmark.py. Each frame is built as a camera would record it:
paper with a light gradient and a soft shadow, a digit drawn large in dark ink, then blur,
sensor noise and, when written to a video, MJPG compression.
"""

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

FRAME_SIZE = (640, 480)
ROI_FRACTION = 0.5


@dataclass
class Scene:
    """The light on the paper for one frame; kept for a few frames while a digit is held."""
    paper: float          # brightness of fully lit paper, 0-255
    gradient: tuple       # (direction in radians, darkest fraction at the far side)
    shadow: tuple         # (centre x, centre y, axes, angle, darkness) or None
    tint: tuple = field(default=(1.0, 1.0, 1.0))
    light: np.ndarray = None  # the paper's brightness per pixel, computed once per scene


def random_scene(rng, width, height):
    shadow = None
    if rng.random() < 0.7:
        shadow = (rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height,
                  (int(rng.uniform(0.15, 0.4) * width), int(rng.uniform(0.15, 0.5) * height)),
                  rng.uniform(0, 180), rng.uniform(0.55, 0.8))
    scene = Scene(paper=rng.uniform(170, 240),
                  gradient=(rng.uniform(0, 2 * np.pi), rng.uniform(0.55, 0.95)),
                  shadow=shadow, tint=tuple(rng.uniform(0.9, 1.0, 3)))
    scene.light = lit_paper(scene, width, height)
    return scene


def lit_paper(scene, width, height):
    """Float32 brightness of the paper: a gradient from one side and a soft shadow."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)  # float32 keeps this quick
    direction, darkest = scene.gradient
    along = (xs - width / 2) * np.cos(direction) + (ys - height / 2) * np.sin(direction)
    along = (along - along.min()) / max(float(np.ptp(along)), 1.0)
    light = 1.0 - (1.0 - darkest) * along
    if scene.shadow is not None:
        cx, cy, axes, angle, darkness = scene.shadow
        # Drawn and blurred at a quarter of the size: a penumbra is smooth, and this is 16x cheaper.
        mask = np.zeros((height // 4, width // 4), np.float32)
        cv2.ellipse(mask, (int(cx / 4), int(cy / 4)), (axes[0] // 4, axes[1] // 4), angle, 0, 360,
                    1.0, cv2.FILLED)
        mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=penumbra(axes) / 4)
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
        light *= 1.0 - (1.0 - darkness) * mask
    return (scene.paper * light).astype(np.float32)


def penumbra(axes):
    # A soft penumbra, about a third of the shadow's smaller half-axis.
    return max(6.0, min(axes) / 3.0)


def roi_box(width, height, fraction=ROI_FRACTION):
    side = int(min(width, height) * fraction)
    return (width - side) // 2, (height - side) // 2, side


@dataclass
class Placement:
    """Where a held digit sits in the ROI: chosen once, then jittered frame by frame."""
    size: float           # height as a fraction of the ROI's side
    angle: float          # degrees
    x: float              # left edge, as a fraction of the free space in the ROI
    y: float


def random_placement(rng, size_range=(0.45, 0.85)):
    return Placement(rng.uniform(*size_range), rng.uniform(-8, 8), rng.random(), rng.random())


def jittered(placement, rng):
    """A hand holding paper is never still: a few pixels, a degree, a few percent in size."""
    return Placement(placement.size * rng.uniform(0.97, 1.03), placement.angle + rng.uniform(-1.5, 1.5),
                     float(np.clip(placement.x + rng.uniform(-0.03, 0.03), 0, 1)),
                     float(np.clip(placement.y + rng.uniform(-0.03, 0.03), 0, 1)))


def place_digit(ink, digit_alpha, placement, region):
    """Draw a digit (alpha in [0, 1]) into `ink` at the placement's size, tilt and position.

    `region` is (x, y, w, h); the alpha is scaled to fill `size` of it, keeping its shape.
    """
    x0, y0, region_w, region_h = region
    alpha_h, alpha_w = digit_alpha.shape
    scale = placement.size * min(region_w / alpha_w, region_h / alpha_h)
    w, h = max(8, int(alpha_w * scale)), max(8, int(alpha_h * scale))
    scaled = cv2.resize(digit_alpha, (w, h), interpolation=cv2.INTER_CUBIC)
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), placement.angle, 1.0)
    scaled = np.clip(cv2.warpAffine(scaled, matrix, (w, h)), 0, 1)
    ys, xs = np.nonzero(scaled > 0.1)
    if len(xs) == 0:
        return
    scaled = scaled[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    dh, dw = scaled.shape
    margin = max(6, min(region_w, region_h) // 20)
    left = x0 + margin + int(placement.x * max(0, region_w - dw - 2 * margin))
    top = y0 + margin + int(placement.y * max(0, region_h - dh - 2 * margin))
    region = ink[top:top + dh, left:left + dw]
    np.maximum(region, scaled[:region.shape[0], :region.shape[1]], out=region)


def camera_frame(scene, digit_alpha, rng, size=FRAME_SIZE, placement=None, region=None,
                 ink_darkness=(0.15, 0.4), noise=(2.0, 6.0), blur=(0.6, 1.4)):
    """One BGR uint8 frame: lit paper, an optional digit in dark ink, blur and sensor noise."""
    width, height = size
    paper = scene.light
    ink = np.zeros((height, width), np.float32)
    if digit_alpha is not None:
        if region is None:
            x0, y0, side = roi_box(width, height)
            region = (x0, y0, side, side)
        place_digit(ink, digit_alpha, placement or random_placement(rng), region)
    darkness = rng.uniform(*ink_darkness)
    gray = paper * (1.0 - ink * (1.0 - darkness))
    gray = cv2.GaussianBlur(gray, (0, 0), sigmaX=rng.uniform(*blur))
    sensor_noise = np.empty_like(gray)
    cv2.setRNGSeed(int(rng.integers(2**31)))  # cv2.randn's own generator: the same frame every run
    cv2.randn(sensor_noise, 0.0, float(rng.uniform(*noise)))
    gray += sensor_noise
    return cv2.merge([cv2.convertScaleAbs(gray, alpha=t) for t in scene.tint])


def mnist_alpha(image):
    """An MNIST digit as ink coverage in [0, 1], with a small blank border."""
    return cv2.copyMakeBorder(image.astype(np.float32) / 255.0, 2, 2, 2, 2, cv2.BORDER_CONSTANT)


def digit_sequence(images, labels, rng, hold=3, blank_every=4, blank_run=2):
    """(alpha or None, label or None) per frame: each digit held `hold` frames, blanks between."""
    frames = []
    for i, (image, label) in enumerate(zip(images, labels)):
        frames += [(mnist_alpha(image), int(label))] * hold
        if (i + 1) % blank_every == 0:
            frames += [(None, None)] * blank_run
    return frames


def write_video(path, frames_with_labels, rng, fps=15, size=FRAME_SIZE, size_range=(0.45, 0.85),
                **frame_options):
    """Render frames to an MJPG .avi; returns the label of every frame (None = blank paper)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {path}")
    labels, previous = [], None
    scene = random_scene(rng, *size)
    for alpha, label in frames_with_labels:
        held = previous is not None and alpha is previous
        if not held:
            scene, placement = random_scene(rng, *size), random_placement(rng, size_range)
        writer.write(camera_frame(scene, alpha, rng, size, jittered(placement, rng), **frame_options))
        labels.append(label)
        previous = alpha
    writer.release()
    return labels


def mnist_test_video(path, mnist_npz, count=150, seed=1, **options):
    """A camera-like video of `count` MNIST test digits; returns the per-frame labels."""
    rng = np.random.default_rng(seed)
    with np.load(mnist_npz) as data:
        x_test, y_test = data["x_test"], data["y_test"]
    picked = rng.choice(len(x_test), size=count, replace=False)
    return write_video(path, digit_sequence(x_test[picked], y_test[picked], rng), rng, **options)


def printed_digit_alpha(digit, font, thickness):
    """A digit printed with one of OpenCV's Hershey fonts, as ink coverage in [0, 1]."""
    canvas = np.zeros((120, 100), np.uint8)
    cv2.putText(canvas, str(digit), (12, 100), font, 3.2, 255, thickness, cv2.LINE_AA)
    return canvas.astype(np.float32) / 255.0


def printed_digits_video(path, seed=2, repeats=3, **options):
    """Printed digits (several fonts and weights) on camera-like paper; returns the labels."""
    rng = np.random.default_rng(seed)
    fonts = [cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
             cv2.FONT_HERSHEY_TRIPLEX]
    frames = []
    for _ in range(repeats):
        for digit in range(10):
            alpha = printed_digit_alpha(digit, fonts[rng.integers(len(fonts))],
                                        int(rng.integers(4, 11)))
            frames += [(alpha, digit)] * 2
    return write_video(path, frames, rng, **options)


def read_predictions(path):
    import json

    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def score(labels, records):
    """(share of digit frames read right, share of blank frames answered 'no digit')."""
    by_frame = {r["frame"]: r["digit"] for r in records}
    digit_frames = [i for i, label in enumerate(labels) if label is not None]
    blank_frames = [i for i, label in enumerate(labels) if label is None]
    right = sum(by_frame.get(i) == labels[i] for i in digit_frames)
    empty = sum(by_frame.get(i, "missing") is None for i in blank_frames)
    return right / max(1, len(digit_frames)), empty / max(1, len(blank_frames))


def number_alpha(images, rng, touching=0.2):
    """MNIST digits written in a row as a person writes a number: uneven gaps and baseline.

    With probability `touching`, a gap closes until the strokes touch or nearly touch.
    """
    crops = []
    for image in images:
        ys, xs = np.nonzero(image > 30)
        crops.append(image[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.float32) / 255)
    height = max(c.shape[0] for c in crops)
    canvas = np.zeros((height + 12, sum(c.shape[1] for c in crops) + 8 * len(crops) + 8), np.float32)
    x = 4
    for crop in crops:
        top = int(np.clip(6 + rng.integers(-2, 3) + (height - crop.shape[0]) // 2, 0,
                          canvas.shape[0] - crop.shape[0]))
        region = canvas[top:top + crop.shape[0], x:x + crop.shape[1]]
        np.maximum(region, crop, out=region)
        gap = int(rng.integers(0, 2)) if rng.random() < touching else int(rng.integers(2, 7))
        x += crop.shape[1] + gap
    return canvas[:, :x + 4]


def number_video(path, mnist_npz, count=60, seed=6, hold=3, **options):
    """A camera-like video of 2- to 5-digit numbers of MNIST test digits; returns the numbers."""
    rng = np.random.default_rng(seed)
    with np.load(mnist_npz) as data:
        x_test, y_test = data["x_test"], data["y_test"]
    frames = []
    for _ in range(count):
        picked = rng.choice(len(x_test), size=int(rng.integers(2, 6)), replace=False)
        number = "".join(str(int(y_test[i])) for i in picked)
        frames += [(number_alpha(x_test[picked], rng), number)] * hold
    width, height = FRAME_SIZE
    band_h = int(min(min(width, height) * ROI_FRACTION, 0.9 * width / 3))
    band = ((width - 3 * band_h) // 2, (height - band_h) // 2, 3 * band_h, band_h)
    return write_video(path, frames, rng, region=band, size_range=(0.75, 0.9), **options)


SEGMENTS = {  # seven-segment digits: a top, b top-right, c bottom-right, d bottom, e bottom-left,
    0: "abcdef", 1: "bc", 2: "abged", 3: "abgcd", 4: "fgbc",  # f top-left, g middle
    5: "afgcd", 6: "afgedc", 7: "abc", 8: "abcdefg", 9: "abfgcd"}


def styled_digit_mask(digit, rng, size=112):
    """One digit in a distinct personal style, as a 0/255 ink mask: boxy seven-segment
    shapes, as some people write after years of reading calculator displays, with the
    writer's own slant and pen width."""
    mask = np.zeros((size, size), np.uint8)
    left, right, top, middle, bottom = 30, 78, 12, 56, 100
    corners = {"a": ((left, top), (right, top)), "b": ((right, top), (right, middle)),
               "c": ((right, middle), (right, bottom)), "d": ((left, bottom), (right, bottom)),
               "e": ((left, middle), (left, bottom)), "f": ((left, top), (left, middle)),
               "g": ((left, middle), (right, middle))}
    pen = int(rng.integers(7, 12))
    for segment in SEGMENTS[digit]:
        (x0, y0), (x1, y1) = corners[segment]
        wobble = rng.uniform(-3, 3, 4).astype(int)
        cv2.line(mask, (x0 + wobble[0], y0 + wobble[1]), (x1 + wobble[2], y1 + wobble[3]), 255, pen)
    slant = rng.uniform(-0.2, 0.1)
    matrix = np.float32([[1, slant, -slant * size / 2], [0, 1, 0]])
    return cv2.threshold(cv2.warpAffine(mask, matrix, (size, size)), 127, 255,
                         cv2.THRESH_BINARY)[1]


def write_user_samples(folder, to_model_input, per_digit=20, seed=9):
    """What pressing 0-9 in the window saves: model inputs under folder/<digit>/."""
    rng = np.random.default_rng(seed)
    for digit in range(10):
        target = Path(folder) / str(digit)
        target.mkdir(parents=True, exist_ok=True)
        for i in range(per_digit):
            x = to_model_input(styled_digit_mask(digit, rng))
            cv2.imwrite(str(target / f"{i:03d}.png"), np.round(x * 255).astype(np.uint8))


# --- Harder numbers: as real hands write them, on real paper ---------------------------

INKS = {  # how much of the light each ink lets through, per channel (B, G, R)
    "black": (0.25, 0.25, 0.25), "blue": (0.75, 0.35, 0.2), "red": (0.3, 0.3, 0.85)}
PAPERS = {"white": (1.0, 1.0, 1.0), "yellow": (0.55, 0.95, 1.0)}


def digit_crop(image):
    ys, xs = np.nonzero(image > 30)
    return image[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.float32) / 255


def handwritten_row(images, rng, line=48, short_share=0.35, touching=0.15, thin=False):
    """MNIST digits written as a person writes a number: alpha in [0, 1] on a baseline.

    Within the row, digit heights run from about half the line to the full line (a
    short 0 beside a tall 7), widths vary naturally, and gaps run from touching to wide.
    """
    glyphs = []
    for image in images:
        crop = digit_crop(image)
        height = line * (rng.uniform(0.5, 0.7) if rng.random() < short_share else rng.uniform(0.85, 1.0))
        scale = height / crop.shape[0]
        width = max(2, int(round(crop.shape[1] * scale * rng.uniform(0.85, 1.15))))
        glyph = cv2.resize(crop, (width, max(2, int(round(height)))), interpolation=cv2.INTER_CUBIC)
        if thin:  # a fine pen: only the core of the stroke
            glyph = np.clip((glyph - 0.55) * 3.0, 0, 1)
        glyphs.append(np.clip(glyph, 0, 1))
    canvas = np.zeros((line + 16, sum(g.shape[1] for g in glyphs) + line * len(glyphs) + 16), np.float32)
    x = 8
    for glyph in glyphs:
        h, w = glyph.shape
        bottom = 8 + line + int(rng.integers(-2, 3))   # short digits sit on the baseline too
        region = canvas[bottom - h:bottom, x:x + w]
        np.maximum(region, glyph, out=region)
        gap = int(rng.integers(-1, 2)) if rng.random() < touching else int(rng.uniform(0.08, 0.6) * line)
        x += w + gap
    return canvas[:, :x + 8]


def paper_lines(shape, rng, kind, spacing):
    """Printed lines of ruled or squared paper, as the share of light they let through."""
    h, w = shape
    through = np.ones((h, w), np.float32)
    darkness = rng.uniform(0.12, 0.25)
    offset, tilt = rng.uniform(0, spacing), np.tan(np.deg2rad(rng.uniform(-1.0, 1.0)))
    step = spacing if kind == "ruled" else spacing / 2
    for y in np.arange(offset - step - abs(tilt) * w, h + abs(tilt) * w, step):
        cv2.line(through, (0, int(y)), (w, int(y + tilt * w)), 1 - darkness, int(rng.integers(1, 3)))
    if kind == "squared":
        for x in np.arange(rng.uniform(0, step), w, step):
            cv2.line(through, (int(x), 0), (int(x - tilt * h), h), 1 - darkness, 1)
    else:  # the margin line of a notebook page, somewhere in the frame
        x = int(rng.uniform(0.05, 0.95) * w)
        cv2.line(through, (x, 0), (x, h), 1 - 1.5 * darkness, 2)
    return cv2.GaussianBlur(through, (0, 0), 0.7)


@dataclass
class HardNumber:
    number: str
    rows: list            # alpha of the row in the band, then rows above and below
    ink: tuple
    paper: tuple
    lines: str            # "plain", "ruled" or "squared"
    faint: bool


def hard_number(x_test, y_test, rng, usable):
    digits = int(rng.integers(2, 7))
    picked = rng.choice(usable, size=digits, replace=False)
    thin = rng.random() < 0.25
    rows = [handwritten_row(x_test[picked], rng, thin=thin)]
    for _ in range(int(rng.integers(0, 3))):  # other rows of the sheet, above or below
        others = rng.choice(len(x_test), size=int(rng.integers(2, 7)), replace=False)
        rows.append(handwritten_row(x_test[others], rng, thin=thin))
    return HardNumber("".join(str(int(y_test[i])) for i in picked), rows,
                      INKS[str(rng.choice(list(INKS)))],
                      PAPERS["yellow" if rng.random() < 0.2 else "white"],
                      str(rng.choice(["plain", "ruled", "squared"])), rng.random() < 0.25)


def hard_number_frame(item, rng, size=FRAME_SIZE):
    """One frame: the number's row centred in the band, other rows above and below it."""
    width, height = size
    band_h = int(min(min(width, height) * ROI_FRACTION, 0.9 * width / 3))
    band_w = 3 * band_h
    row = item.rows[0]
    scale = min(rng.uniform(0.45, 0.6) * band_h / row.shape[0], 0.9 * band_w / row.shape[1])
    spacing = row.shape[0] * scale * rng.uniform(1.25, 1.6)   # rows apart, as on lined paper
    alpha = np.zeros((height, width), np.float32)
    centre = (width / 2 + rng.uniform(-0.03, 0.03) * band_w, height / 2 + rng.uniform(-0.05, 0.05) * band_h)
    for i, other in enumerate(item.rows):
        side = 0 if i == 0 else (-1) ** i * ((i + 1) // 2)
        matrix = cv2.getRotationMatrix2D((other.shape[1] / 2, other.shape[0] / 2), rng.uniform(-2, 2), scale)
        matrix[:, 2] += (centre[0] - other.shape[1] / 2 + (rng.uniform(-0.2, 0.2) * band_w if i else 0),
                         centre[1] - other.shape[0] / 2 + side * spacing)
        placed = cv2.warpAffine(other, matrix, size, flags=cv2.INTER_LINEAR)
        np.maximum(alpha, placed, out=alpha)
    scene = random_scene(rng, width, height)
    through = np.ones((height, width), np.float32)
    if item.lines != "plain":
        through = paper_lines((height, width), rng, item.lines, spacing)
    ink = np.array(item.ink, np.float32)
    if item.faint:
        ink = 1 - (1 - ink) * rng.uniform(0.45, 0.65)
    channels = []
    for c in range(3):
        light = scene.light * item.paper[c] * through * (1 - alpha * (1 - ink[c]))
        light = cv2.GaussianBlur(light, (0, 0), sigmaX=rng.uniform(0.6, 1.2))
        noise = np.empty_like(light)
        cv2.randn(noise, 0.0, float(rng.uniform(2.0, 5.0)))
        channels.append(cv2.convertScaleAbs(light + noise))
    return cv2.merge(channels)


def hard_number_video(path, mnist_npz, count=100, seed=11, hold=2, fps=15, size=FRAME_SIZE,
                      readable=None):
    """A camera-like MJPG video of numbers written as real hands write them; the numbers.

    `readable` (a boolean per MNIST test image) limits the number's own digits to those
    the model reads right as clean MNIST images: the video then measures what the camera
    and the row do to the reading, not the model's known MNIST errors (measured apart).
    """
    rng = np.random.default_rng(seed)
    cv2.setRNGSeed(seed)   # cv2.randn's own generator: the same video whatever ran before
    with np.load(mnist_npz) as data:
        x_test, y_test = data["x_test"], data["y_test"]
    usable = np.flatnonzero(readable) if readable is not None else np.arange(len(x_test))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    numbers = []
    for _ in range(count):
        item = hard_number(x_test, y_test, rng, usable)
        for _ in range(hold):
            writer.write(hard_number_frame(item, rng, size))
            numbers.append(item.number)
    writer.release()
    return numbers


def same_scene(size, digit_alpha, seed, number=False):
    """One camera frame of `digit_alpha` on paper, the same scene at any resolution: the
    light, the ink and the digit's place are drawn from `seed` as shares of the frame."""
    rng = np.random.default_rng(seed)
    width, height = size
    scene = random_scene(rng, width, height)
    placement = random_placement(rng, (0.75, 0.9) if number else (0.5, 0.8))
    region = None
    if number:
        band_h = int(min(min(width, height) * ROI_FRACTION, 0.9 * width / 3))
        region = ((width - 3 * band_h) // 2, (height - band_h) // 2, 3 * band_h, band_h)
    scale = width / FRAME_SIZE[0]   # blur and noise as a camera of this resolution has them
    return camera_frame(scene, digit_alpha, rng, size, placement, region=region,
                        blur=(0.6 * scale, 1.4 * scale))
