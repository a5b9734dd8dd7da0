"""QR codes of ballot URLs (`{public_url}/b/{code}`), as PNG and SVG (the `qrcode` library)."""
from __future__ import annotations

import io

import qrcode
import qrcode.image.svg
from qrcode.constants import ERROR_CORRECT_M

# Medium error correction survives a crease or a smudge on a printed sheet.
_ERROR_CORRECTION = ERROR_CORRECT_M


def _make(text: str, *, box_size: int, border: int, image_factory=None):
    qr = qrcode.QRCode(error_correction=_ERROR_CORRECTION, box_size=box_size, border=border,
                       image_factory=image_factory)
    qr.add_data(text)
    qr.make(fit=True)
    return qr.make_image()


def qr_image(text: str, *, box_size: int = 8, border: int = 2):
    """A PIL image (black on white), e.g. to place in a PDF."""
    return _make(text, box_size=box_size, border=border).get_image()


def qr_png(text: str, *, box_size: int = 8, border: int = 4) -> bytes:
    out = io.BytesIO()
    _make(text, box_size=box_size, border=border).save(out)
    return out.getvalue()


def qr_svg(text: str, *, border: int = 4) -> str:
    """A standalone SVG document (paths, no raster), scalable for print."""
    image = _make(text, box_size=10, border=border, image_factory=qrcode.image.svg.SvgPathImage)
    return image.to_string(encoding="unicode")
