"""Hostile image files for the tests and benchmarks/image_bombs.py: PNGs that declare far
more pixels than their bytes suggest (decompression bombs), written without ever holding the
image in memory.

    write_png("bomb.png", 13000, 13000)            # 8-bit RGB, about 0.5 MB on disk, 169 MP
    write_png("bomb16.png", 13000, 13000, bits=16, channels=1)
    write_png("head.png", 20000, 20000, data=False)  # the header alone: nothing to decode
"""

import struct
import zlib

_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (grey, grey+alpha, RGB, RGBA)


def _chunk(kind, payload):
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def write_png(path, width, height, channels=3, bits=8, data=True):
    """Writes an all-zero (black) PNG of `width` x `height` pixels, streaming its rows.

    Args:
        path: the file to write.
        width, height: the declared size in pixels.
        channels: 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA).
        bits: 8 or 16 bits per sample.
        data: False writes the header and no pixel data (a truncated file).

    Returns:
        `path`.
    """
    row = b"\0" * (1 + width * channels * bits // 8)  # filter byte 0, then zero samples
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bits, _COLOUR_TYPES[channels],
                                            0, 0, 0)))
        if data:
            z = zlib.compressobj(9)
            block = row * max(1, (1 << 22) // len(row))
            rows_per_block = len(block) // len(row)
            done = 0
            while done < height:
                n = min(rows_per_block, height - done)
                out = z.compress(block if n == rows_per_block else row * n)
                if out:
                    f.write(_chunk(b"IDAT", out))
                done += n
            f.write(_chunk(b"IDAT", z.flush()))
        f.write(_chunk(b"IEND", b""))
    return path
