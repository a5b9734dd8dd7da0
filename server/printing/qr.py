"""QR codes of ballot URLs (`{public_url}/b/{code}`), as PNG and SVG (the `qrcode` library)."""
from __future__ import annotations

import io
from functools import lru_cache

import qrcode
import qrcode.image.svg
from PIL import Image
from qrcode.constants import ERROR_CORRECT_M

# Medium error correction survives a crease or a smudge on a printed sheet.
_ERROR_CORRECTION = ERROR_CORRECT_M


def _make(text: str, *, box_size: int, border: int, image_factory=None):
    qr = qrcode.QRCode(error_correction=_ERROR_CORRECTION, box_size=box_size, border=border,
                       image_factory=image_factory)
    qr.add_data(text)
    qr.make(fit=True)
    return qr.make_image()


# Every QR code of the project uses one mask pattern.  Scoring the eight masks to pick the best is
# the slow part of making a code (~12 ms of ~13 ms in pure Python: 12 s for 1,000 code sheets); any
# mask is valid for every reader (ISO/IEC 18004 §7.8), and medium error correction keeps a printed
# code readable.  tests/test_documents*.py decode the printed codes with zxing-cpp.
_MASK_PATTERN = 2


@lru_cache(maxsize=1024)
def _matrix(text: str) -> tuple[tuple[bool, ...], ...]:
    """The module matrix without border, computed once per URL and shared by the PNG and the PDF sheet."""
    qr = qrcode.QRCode(error_correction=_ERROR_CORRECTION, border=0, mask_pattern=_MASK_PATTERN)
    qr.add_data(text)
    qr.make(fit=True)
    return tuple(tuple(row) for row in qr.get_matrix())


def qr_image(text: str, *, box_size: int = 8, border: int = 2):
    """A PIL image (black on white, mode "1"), e.g. to place in a PDF."""
    matrix = _matrix(text)
    n = len(matrix) + 2 * border
    image = Image.new("1", (n, n), 1)
    pixels = image.load()
    assert pixels is not None  # a new in-memory image always loads
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if dark:
                pixels[x + border, y + border] = 0
    return image.resize((n * box_size, n * box_size), Image.Resampling.NEAREST)


def qr_png(text: str, *, box_size: int = 8, border: int = 4) -> bytes:
    out = io.BytesIO()
    qr_image(text, box_size=box_size, border=border).save(out, format="PNG")
    return out.getvalue()


def qr_svg(text: str, *, border: int = 4) -> str:
    """A standalone SVG document (paths, no raster), scalable for print."""
    image = _make(text, box_size=10, border=border, image_factory=qrcode.image.svg.SvgPathImage)
    return image.to_string(encoding="unicode")
