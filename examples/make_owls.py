#!/usr/bin/env python3
"""Draw the "Pixel Owls" example layer set for kiln.

    python3 examples/make_owls.py OUTDIR

writes OUTDIR/layers/<Layer>/<trait>.png (256x256 8-bit RGBA, transparent except where
drawn) and OUTDIR/legendaries/founder.png (256x256, fully opaque). Every image is drawn on
a 32x32 grid and scaled up 8x with nearest neighbour, so the art is crisp pixel art and the
PNGs stay small. The output is deterministic: no randomness beyond a fixed-seed LCG, no
timestamps, so running it twice gives the same bytes (for a given Pillow version).

The art is original, drawn by this script; the example in examples/owls/ was made with it:

    /usr/bin/python3 examples/make_owls.py examples/owls

Needs Pillow (Debian: python3-pil).
"""
import os
import sys

from PIL import Image

GRID = 32          # drawing grid
SCALE = 8          # 32 * 8 = 256 px
SIZE = GRID * SCALE


def hexc(s, a=255):
    s = s.lstrip("#")
    return (int(s[0:2], 16), int(s[2:4], 16), int(s[4:6], 16), a)


class Canvas:
    """A 32x32 RGBA grid. Coordinates are continuous: pixel (i, j) covers [i, i+1) x [j, j+1)
    and its centre is (i+0.5, j+0.5); the image is mirror-symmetric about x = 16."""

    def __init__(self, fill=(0, 0, 0, 0)):
        self.img = Image.new("RGBA", (GRID, GRID), fill)
        self.px = self.img.load()

    def set(self, x, y, c):
        if 0 <= x < GRID and 0 <= y < GRID:
            self.px[x, y] = c

    def get(self, x, y):
        return self.px[x, y]

    def fill(self, pred, c):
        for y in range(GRID):
            for x in range(GRID):
                if pred(x + 0.5, y + 0.5):
                    self.px[x, y] = c

    def rect(self, x0, y0, x1, y1, c):
        """Inclusive pixel rectangle."""
        for y in range(y0, y1 + 1):
            for x in range(x0, x1 + 1):
                self.set(x, y, c)

    def mirror_set(self, x, y, c):
        """Set (x, y) and its mirror image (31-x, y)."""
        self.set(x, y, c)
        self.set(GRID - 1 - x, y, c)

    def save(self, path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        big = self.img.resize((SIZE, SIZE), Image.NEAREST)
        big.save(path, "PNG", optimize=True)


# ---- shape predicates (continuous coordinates) --------------------------------------------

def ellipse(cx, cy, rx, ry):
    return lambda x, y: ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0


def circle(cx, cy, r):
    return ellipse(cx, cy, r, r)


def union(*ps):
    return lambda x, y: any(p(x, y) for p in ps)


def inter(*ps):
    return lambda x, y: all(p(x, y) for p in ps)


def minus(a, b):
    return lambda x, y: a(x, y) and not b(x, y)


def triangle(a, b, c):
    def sign(p, q, r):
        return (p[0] - r[0]) * (q[1] - r[1]) - (q[0] - r[0]) * (p[1] - r[1])

    def inside(x, y):
        p = (x, y)
        d1, d2, d3 = sign(p, a, b), sign(p, b, c), sign(p, c, a)
        neg = d1 < 0 or d2 < 0 or d3 < 0
        pos = d1 > 0 or d2 > 0 or d3 > 0
        return not (neg and pos)
    return inside


def mirrored(pred):
    """pred and its mirror image about x = 16."""
    return lambda x, y: pred(x, y) or pred(GRID - x, y)


def mask_of(pred):
    return {(x, y) for y in range(GRID) for x in range(GRID) if pred(x + 0.5, y + 0.5)}


def outline(cv, mask, c):
    """Paint the mask's inner edge (pixels with a 4-neighbour outside the mask)."""
    for (x, y) in mask:
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            if (x + dx, y + dy) not in mask:
                cv.set(x, y, c)
                break


class Lcg:
    """A tiny fixed LCG so 'random' details are the same everywhere."""

    def __init__(self, seed):
        self.s = seed & 0xFFFFFFFF

    def next(self, n):
        self.s = (self.s * 1664525 + 1013904223) & 0xFFFFFFFF
        return (self.s >> 8) % n


# ---- geometry shared by the layers ---------------------------------------------------------

EYE_L = (12.0, 14.0)           # eye centres; mirror images of each other
EYE_R = (GRID - 12.0, 14.0)
HEAD_TOP = 7                   # first row of the head (below the tufts)

HEAD = ellipse(16, 13.5, 9.2, 6.8)
TORSO = ellipse(16, 21, 9.0, 8.6)
TUFT = triangle((6.2, 3.0), (12.5, 8.5), (7.0, 11.0))
WING = ellipse(7.6, 21.0, 3.2, 7.0)
SILHOUETTE = union(HEAD, TORSO, mirrored(TUFT), mirrored(WING))
BELLY = ellipse(16, 23.2, 5.6, 5.6)
FACE = union(circle(*EYE_L, 4.6), circle(*EYE_R, 4.6))


# ---- Background ----------------------------------------------------------------------------

def vgradient(stops):
    """Banded vertical gradient: stops is a list of colours, one band per 32/len rows."""
    cv = Canvas()
    n = len(stops)
    for y in range(GRID):
        c = stops[min(n - 1, y * n // GRID)]
        cv.rect(0, y, GRID - 1, y, c)
    return cv


def stars(cv, seed, count, colours):
    r = Lcg(seed)
    for _ in range(count):
        x, y = r.next(GRID), r.next(22)
        cv.set(x, y, colours[r.next(len(colours))])


def bg_dusk():
    cv = vgradient([hexc(c) for c in
                    ("2b1d4e", "3d2462", "5a2c6e", "7f3a6f", "a8486a", "d0625e", "ec8a5a", "f6b26b")])
    stars(cv, 7, 10, [hexc("fff4d6"), hexc("c9b8ff")])
    return cv


def bg_dawn():
    cv = vgradient([hexc(c) for c in
                    ("8fc8f0", "a3d2f2", "b9dbf0", "d3e0ea", "efd9dc", "f8cfc7", "fbc0a8", "fdb38a")])
    # a low sun
    cv.fill(inter(circle(26, 27, 4.5), lambda x, y: y < 30), hexc("fff0b0"))
    return cv


def bg_mint():
    cv = Canvas(hexc("a8e6cf"))
    # a faint diagonal check for texture
    for y in range(GRID):
        for x in range(GRID):
            if (x // 4 + y // 4) % 2 == 0:
                cv.set(x, y, hexc("9edfc5"))
    return cv


def bg_gold():
    cv = vgradient([hexc(c) for c in
                    ("fff1b8", "fde58e", "f9d66a", "f2c44c", "e6b03a", "d49a2c", "bd8422", "a06e1a")])
    for (x, y) in ((4, 4), (27, 6), (24, 2), (6, 12), (28, 14)):   # sparkles
        c = hexc("ffffff")
        cv.set(x, y, c)
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            cv.set(x + dx, y + dy, hexc("fff8dc"))
    return cv


def bg_void():
    cv = Canvas(hexc("07060d"))
    stars(cv, 99, 26, [hexc("ffffff"), hexc("8f8fb8"), hexc("4b4b70"), hexc("b38fff")])
    return cv


BACKGROUNDS = {"Dusk": bg_dusk, "Dawn": bg_dawn, "Mint": bg_mint, "Gold": bg_gold, "Void": bg_void}


# ---- Body ----------------------------------------------------------------------------------

BODY_PALETTES = {
    #          main      wing      belly     face      line      mark
    "Brown":  ("8b5a2b", "6b4220", "d8b48a", "e8cfa8", "3a2410", "8b5a2b"),
    "Snow":   ("eef2f6", "c9d3de", "ffffff", "ffffff", "5c6878", "a9b6c4"),
    "Gold":   ("e8b43a", "c08a1e", "fbe08a", "fff0b8", "6a4508", "c08a1e"),
    "Silver": ("a9b2bc", "7f8994", "d9dee4", "eceff2", "3c434c", "8a939e"),
}
BRANCH = hexc("5b3a22")
BRANCH_DARK = hexc("3b2414")
LEAF = hexc("4f9a4a")
FEET = hexc("f0a030")
FEET_DARK = hexc("b06a10")


def body(name):
    main, wing, belly, face, line, mark = (hexc(c) for c in BODY_PALETTES[name])
    cv = Canvas()
    # branch the owl sits on (under the feet)
    cv.rect(1, 29, 30, 30, BRANCH)
    cv.rect(1, 30, 30, 30, BRANCH_DARK)
    cv.rect(0, 29, 0, 29, BRANCH_DARK)
    cv.set(31, 30, BRANCH_DARK)
    for (x, y) in ((3, 28), (4, 27), (27, 28), (28, 27), (29, 28)):
        cv.set(x, y, LEAF)

    sil = mask_of(SILHOUETTE)
    body_mask = mask_of(minus(SILHOUETTE, lambda x, y: y > 29))
    for (x, y) in body_mask:
        cv.set(x, y, main)
    # wings, darker, with a feather edge
    cv.fill(inter(mirrored(WING), lambda x, y: y <= 29), wing)
    for y in (19, 22, 25):
        cv.mirror_set(6, y, line)
        cv.mirror_set(7, y + 1, line)
    # belly with chevron marks
    cv.fill(BELLY, belly)
    for (x, y) in ((13, 21), (14, 22), (15, 21), (17, 21), (18, 22), (19, 21),
                   (15, 24), (16, 25), (17, 24), (13, 26), (14, 27), (18, 27), (19, 26)):
        cv.set(x, y, mark)
    # facial disc
    cv.fill(FACE, face)
    outline(cv, mask_of(FACE), mark if name != "Snow" else hexc("d5dde6"))
    # brow "V" above the beak
    for (x, y) in ((15, 10), (16, 10), (14, 9), (17, 9)):
        cv.set(x, y, wing)
    # tuft tips darker
    for (x, y) in ((7, 4), (7, 5), (8, 5)):
        cv.mirror_set(x, y, wing)
    outline(cv, {p for p in sil if p[1] <= 29}, line)
    # feet gripping the branch
    for x in (12, 13, 14):
        cv.mirror_set(x, 29, FEET)
    for x in (12, 14):
        cv.mirror_set(x, 30, FEET_DARK)
    return cv


# ---- Eyes ----------------------------------------------------------------------------------

WHITE = hexc("ffffff")
BLACK = hexc("101014")
EYE_RING = hexc("2a2024")


def eye_disc(cv, r, iris, pupil_r, lid=None):
    for (cx, cy) in (EYE_L, EYE_R):
        m = mask_of(circle(cx, cy, r))
        for p in m:
            cv.set(*p, iris)
        outline(cv, m, EYE_RING)
        cv.fill(circle(cx, cy, pupil_r), BLACK)


def eyes_round():
    cv = Canvas()
    eye_disc(cv, 3.3, hexc("ffcf3a"), 1.6)
    for (cx, cy) in (EYE_L, EYE_R):       # highlight
        cv.set(int(cx) - 1, int(cy) - 2, WHITE)
    return cv


def eyes_wide():
    cv = Canvas()
    eye_disc(cv, 4.3, WHITE, 1.0)
    for (cx, cy) in (EYE_L, EYE_R):
        ring = mask_of(minus(circle(cx, cy, 2.3), circle(cx, cy, 1.0)))
        for p in ring:
            cv.set(*p, hexc("f08c1a"))
        cv.set(int(cx) - 1, int(cy) - 1, WHITE)
    return cv


def eyes_sleepy():
    cv = Canvas()
    for (cx, cy) in (EYE_L, EYE_R):
        # closed lids: a curved line with lashes, no eyeball
        for dx, dy in ((-2, 0), (-1, 1), (0, 1), (1, 1), (2, 0)):
            cv.set(int(cx) + dx, int(cy) + dy, EYE_RING)
        for dx, dy in ((-3, -1), (3, -1)):
            cv.set(int(cx) + dx, int(cy) + dy, EYE_RING)
    # a small "z" floating up and right
    for (x, y) in ((25, 4), (26, 4), (27, 4), (26, 5), (25, 6), (26, 6), (27, 6)):
        cv.set(x, y, hexc("ffffff", 230))
    for (x, y) in ((28, 1), (29, 1), (29, 2), (28, 3), (29, 3)):
        cv.set(x, y, hexc("ffffff", 200))
    return cv


def eyes_laser():
    cv = Canvas()
    red, hot, glow = hexc("ff2a2a"), hexc("fff0f0"), hexc("ff3030", 110)
    # beams first, so the eyes sit on top of them: a hot core, red edges, a faint glow
    for (cx, cy), sx in ((EYE_L, -1), (EYE_R, 1)):
        x0, y0 = int(cx), int(cy)
        for i in range(1, GRID):
            x, y = x0 + sx * i, y0 + 1
            cv.set(x, y - 2, glow)
            cv.set(x, y + 2, glow)
            cv.set(x, y - 1, red)
            cv.set(x, y + 1, red)
            cv.set(x, y, hot)
    eye_disc(cv, 3.3, red, 1.2)
    for (cx, cy) in (EYE_L, EYE_R):
        cv.fill(circle(cx, cy, 1.2), hot)
    return cv


EYES = {"Round": eyes_round, "Sleepy": eyes_sleepy, "Laser": eyes_laser, "Wide": eyes_wide}


# ---- Beak ----------------------------------------------------------------------------------

BEAK = hexc("f2a23a")
BEAK_DARK = hexc("b86a12")
MOUTH = hexc("8a1c2a")


def beak_small():
    cv = Canvas()
    for (x, y) in ((15, 16), (16, 16), (15, 17), (16, 17)):
        cv.set(x, y, BEAK)
    cv.set(15, 18, BEAK_DARK)
    cv.set(16, 18, BEAK_DARK)
    return cv


def beak_hooked():
    cv = Canvas()
    for (x, y) in ((14, 15), (15, 15), (16, 15), (17, 15),
                   (14, 16), (15, 16), (16, 16), (17, 16),
                   (15, 17), (16, 17), (16, 18), (16, 19)):
        cv.set(x, y, BEAK)
    for (x, y) in ((17, 17), (17, 18), (16, 20), (15, 19)):
        cv.set(x, y, BEAK_DARK)
    return cv


def beak_open():
    cv = Canvas()
    for (x, y) in ((14, 15), (15, 15), (16, 15), (17, 15), (15, 16), (16, 16)):
        cv.set(x, y, BEAK)
    for (x, y) in ((14, 16), (17, 16), (14, 17), (15, 17), (16, 17), (17, 17)):
        cv.set(x, y, MOUTH)
    cv.set(15, 17, hexc("e0607a"))       # tongue
    cv.set(16, 17, hexc("e0607a"))
    for (x, y) in ((14, 18), (15, 18), (16, 18), (17, 18)):
        cv.set(x, y, BEAK_DARK)
    return cv


BEAKS = {"Small": beak_small, "Hooked": beak_hooked, "Open": beak_open}


# ---- Hat -----------------------------------------------------------------------------------

def hat_crown():
    cv = Canvas()
    gold, dark, gem = hexc("ffd23a"), hexc("b8860b"), hexc("e0263a")
    cv.rect(11, 5, 20, 7, gold)
    for x in (11, 15, 16, 20):            # points
        cv.set(x, 4, gold)
    cv.set(11, 3, gold)
    cv.set(20, 3, gold)
    cv.set(15, 2, gold)
    cv.set(16, 2, gold)
    cv.set(15, 3, gold)
    cv.set(16, 3, gold)
    cv.rect(11, 7, 20, 7, dark)
    cv.set(13, 6, gem)
    cv.set(18, 6, gem)
    cv.set(15, 5, hexc("3a7de0"))
    cv.set(16, 5, hexc("3a7de0"))
    return cv


def hat_cap():
    cv = Canvas()
    cap, dark, brim = hexc("2f6fd6"), hexc("1d4a96"), hexc("1a3f80")
    cv.fill(inter(ellipse(16, 8.5, 6.2, 4.5), lambda x, y: y < 8.5), cap)
    cv.rect(10, 8, 21, 8, dark)
    cv.rect(17, 8, 25, 9, brim)           # brim sticks out to one side
    cv.set(16, 4, hexc("ffffff"))          # button
    cv.set(13, 6, hexc("ffffff"))          # logo dot
    cv.set(14, 6, hexc("ffffff"))
    return cv


def hat_wizard():
    cv = Canvas()
    hat, dark, star = hexc("5b2a9e"), hexc("3c1a6e"), hexc("ffe45c")
    cv.fill(triangle((16, -0.5), (10.5, 8.5), (21.5, 8.5)), hat)
    cv.fill(triangle((16, -0.5), (16, 8.5), (21.5, 8.5)), dark)   # shaded side
    cv.rect(8, 8, 23, 9, dark)             # brim
    cv.rect(9, 8, 22, 8, hat)
    for (x, y) in ((15, 4), (17, 6), (14, 7), (16, 2)):
        cv.set(x, y, star)
    return cv


def hat_halo():
    cv = Canvas()
    ring, shine = hexc("ffe66b"), hexc("fffbd0")
    m = mask_of(minus(ellipse(16, 2.5, 6.0, 2.0), ellipse(16, 2.5, 4.2, 0.9)))
    for p in m:
        cv.set(*p, ring)
    for x in (13, 14):
        cv.set(x, 1, shine)
    return cv


HATS = {"Crown": hat_crown, "Cap": hat_cap, "Wizard": hat_wizard, "Halo": hat_halo}


# ---- the legendary -------------------------------------------------------------------------

def founder():
    """The Founder: a gold owl with a royal frame, crown, wide eyes and a monocle."""
    cv = Canvas(hexc("1a0f3a"))
    # rings of light behind the owl
    rings = [hexc("5a3aa8"), hexc("44288a"), hexc("33206e"), hexc("261852")]
    for y in range(GRID):
        for x in range(GRID):
            d = ((x + 0.5 - 16) ** 2 + (y + 0.5 - 15) ** 2) ** 0.5
            cv.set(x, y, rings[min(len(rings) - 1, int(d) // 4 - 1)] if d >= 4 else rings[0])
    stars(cv, 2024, 18, [hexc("fff4c0"), hexc("ffd23a")])
    for layer in (body("Gold"), eyes_wide(), beak_hooked(), hat_crown()):
        cv.img = Image.alpha_composite(cv.img, layer.img)
        cv.px = cv.img.load()
    # monocle over the right eye, with a chain
    cx, cy = EYE_R
    for p in mask_of(minus(circle(cx, cy, 4.6), circle(cx, cy, 3.6))):
        cv.set(*p, hexc("ffd23a"))
    for (x, y) in ((24, 18), (24, 19), (25, 20), (25, 21), (25, 22), (24, 23)):
        cv.set(x, y, hexc("ffd23a"))
    # gold frame
    gold, dark = hexc("ffd23a"), hexc("a8740c")
    for i in range(GRID):
        for (x, y) in ((i, 0), (i, GRID - 1), (0, i), (GRID - 1, i)):
            cv.set(x, y, gold if i % 4 else dark)
    cv.img = cv.img.convert("RGBA")
    # fully opaque
    assert all(a == 255 for a in cv.img.getchannel("A").getdata())
    return cv


# ---- main ----------------------------------------------------------------------------------

LAYERS = [
    ("Background", BACKGROUNDS),
    ("Body", {k: (lambda k=k: body(k)) for k in BODY_PALETTES}),
    ("Eyes", EYES),
    ("Beak", BEAKS),
    ("Hat", HATS),
]


def main(argv):
    if len(argv) != 2 or argv[1].startswith("-"):
        sys.stderr.write("usage: make_owls.py OUTDIR\n")
        return 2
    out = argv[1]
    for layer, traits in LAYERS:
        for name, draw in traits.items():
            path = os.path.join(out, "layers", layer, name.lower() + ".png")
            draw().save(path)
            print(path)
    path = os.path.join(out, "legendaries", "founder.png")
    founder().save(path)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
