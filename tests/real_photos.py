"""Real photos of other people's handwriting, framed as a webcam would see them.

The photos live outside the repo (`../shared/real-photos/`, or $REAL_PHOTOS) and are never
committed. Each item of its labels.json is framed as its README says a user holds the
paper: the ink's box centred in a 640x480 frame, at a size that sits well inside the ROI
(single digits) or the 3:1 number band, with the paper's colour where the photo ends.
"""

import json
import os
import zlib
from pathlib import Path

import cv2
import numpy as np

FOLDER = Path(os.environ.get("REAL_PHOTOS") or
              Path(__file__).resolve().parent.parent.parent / "shared" / "real-photos")
FRAME_SIZE = (640, 480)
ROI_FRACTION = 0.5
SINGLE_FILL = 0.6        # the digit's longer side, as a share of the ROI's side
NUMBER_FILL = (0.85, 0.6)  # the row's box, as a share of the band's width and height
SHEET_MARGIN = 0.25      # around a row cut from a sheet, as a share of the row's height


def available():
    return (FOLDER / "labels.json").is_file()


def items(kind=None):
    entries = json.loads((FOLDER / "labels.json").read_text())
    return [e for e in entries if kind is None or e["kind"] == kind]


def writer_of(entry):
    """'dcdl-mchu_3.png' -> 'dcdl-mchu'; 'hypjudy_4.bmp' -> 'hypjudy'."""
    return entry["file"].rsplit("_", 1)[0]


def paper_colour(image, box):
    """The median colour of the photo around the ink's box: the paper under this light."""
    x, y, w, h = box
    mask = np.full(image.shape[:2], 255, np.uint8)
    mask[max(0, y - h // 4):y + h + h // 4, max(0, x - w // 4):x + w + w // 4] = 0
    pixels = image[mask > 0] if cv2.countNonZero(mask) > 100 else image.reshape(-1, 3)
    return tuple(int(v) for v in np.median(pixels, axis=0))


def number_band(width, height, fraction=ROI_FRACTION, aspect=3.0):
    band_h = int(min(min(width, height) * fraction, 0.9 * width / aspect))
    band_w = int(round(band_h * aspect))
    return band_w, band_h


def frame_item(entry, size=FRAME_SIZE, scale_by=1.0, sheet_margin=SHEET_MARGIN, tilt=0.0, grain=0.0,
               blur=0.0, motion=0, fade=1.0, jpeg=None):
    """The item as a camera frame: BGR uint8, its ink centred in the ROI or the band.

    `scale_by` makes the writing larger or smaller than the README's framing,
    `sheet_margin` keeps more of a sheet around a row, and `tilt` turns the paper by that
    many degrees (counter-clockwise), to check that an answer does not hinge on one framing;
    `grain` adds a dim room's sensor noise of that standard deviation (gray levels),
    `blur` a camera out of focus (a Gaussian blur of that standard deviation, in pixels),
    `motion` the smear of paper moving sideways during the exposure (that many pixels), and
    `fade` keeps that share of the ink's darkness (a pencil, a pen running dry), and `jpeg`
    stores the frame as JPEG of that quality, as a webcam sending MJPG does.
    """
    image = cv2.imread(str(FOLDER / entry["file"]), cv2.IMREAD_COLOR)
    x, y, w, h = entry["box"]
    paper = paper_colour(image, entry["box"])
    if entry.get("sheet"):
        margin = max(4, int(sheet_margin * h))
        x0, y0 = max(0, x - margin), max(0, y - margin)
        image = image[y0:y + h + margin, x0:x + w + margin]
        x, y = x - x0, y - y0
    width, height = size
    if entry["kind"] == "single":
        side = min(width, height) * ROI_FRACTION
        scale = SINGLE_FILL * side / max(w, h)
    else:
        band_w, band_h = number_band(width, height)
        scale = min(NUMBER_FILL[0] * band_w / w, NUMBER_FILL[1] * band_h / h)
    scale *= scale_by
    shift = (width / 2 - scale * (x + w / 2), height / 2 - scale * (y + h / 2))
    matrix = np.float32([[scale, 0, shift[0]], [0, scale, shift[1]]])
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), tilt, 1.0)
    matrix = (turn @ np.vstack([matrix, [0, 0, 1]])).astype(np.float32)
    frame = np.empty((height, width, 3), np.uint8)
    frame[:] = paper
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    frame = cv2.warpAffine(image, matrix, size, dst=frame, flags=interpolation,
                           borderMode=cv2.BORDER_TRANSPARENT)
    if fade != 1.0:
        paper_light = np.float32(paper)
        frame = np.clip(paper_light - (paper_light - frame) * fade, 0, 255).astype(np.uint8)
    if blur:
        frame = cv2.GaussianBlur(frame, (0, 0), blur)
    if motion:
        frame = cv2.blur(frame, (int(motion), 1))
    if grain:
        noise = np.random.default_rng(zlib.crc32(entry["file"].encode())).normal(0, grain, frame.shape)
        frame = np.clip(frame + noise, 0, 255).astype(np.uint8)
    return sent_as_jpeg(frame, jpeg) if jpeg else frame


def sent_as_jpeg(frame, quality):
    """The frame as a webcam sending MJPG delivers it: stored as JPEG of this quality."""
    return cv2.imdecode(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])[1],
                        cv2.IMREAD_COLOR)


def write_video(path, entries, **framing):
    """A lossless video: each item's frame, then a frame of its blank paper (the reader's
    steady-answer memory starts again, as when the paper is swapped). Returns the frame
    index of every item."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 10, FRAME_SIZE)
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {path}")
    indexes = []
    for entry in entries:
        frame = frame_item(entry, **framing)
        indexes.append(2 * len(indexes))
        writer.write(frame)
        blank = np.empty_like(frame)
        blank[:] = np.median(frame.reshape(-1, 3), axis=0)
        writer.write(blank)
    writer.release()
    return indexes


def answer_of(record, kind):
    """The app's answer for one frame's record, as a string ('' for no answer)."""
    if kind == "single":
        return "" if record["digit"] is None else str(record["digit"])
    return record.get("number") or ""


def per_writer_table(entries, answers):
    """Lines of a per-writer table: items, exact answers, and the misses."""
    rows = {}
    for entry, answer in zip(entries, answers):
        row = rows.setdefault(writer_of(entry), [0, 0, []])
        row[0] += 1
        if answer == entry["label"]:
            row[1] += 1
        else:
            row[2].append(f"{entry['label']}->{answer or '-'}")
    lines = [f"{'writer':<18}{'items':>6}{'right':>7}  misses"]
    for writer, (count, right, misses) in rows.items():
        lines.append(f"{writer:<18}{count:>6}{right:>7}  {' '.join(misses)}")
    return lines
