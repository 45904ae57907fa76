"""Exemplar-based image completion: PatchMatch inside a coarse-to-fine EM loop. No weights.

The hole is filled with pixels copied from the rest of the image:

- Wexler, Shechtman & Irani, "Space-Time Completion of Video", TPAMI 2007: completion as
  alternating (a) a nearest-neighbour search that gives every patch overlapping the hole its
  most similar patch lying fully outside the hole and (b) a vote where each hole pixel becomes
  the similarity-weighted mean of the pixels those patches put on it (their eq. 3-4, with the
  Gaussian weight whose sigma is the 75th percentile of the patch distances), run on an image
  pyramid from coarse to fine; each finer scale starts from the coarser nearest-neighbour
  field, scaled up.
- Barnes, Shechtman, Finkelstein & Goldman, "PatchMatch", SIGGRAPH 2009: the nearest-neighbour
  field is found by random initialisation, propagation (a neighbour's match shifted by one
  pixel is tried) and random search around the current match at exponentially shrinking radii.
  Here every step runs for all target patches at once (numpy + torch gathers); propagation
  goes one direction at a time so improvements still travel across the field within a pass.
- Newson, Almansa, Gousseau & Perez, "Non-Local Patch-Based Image Inpainting", IPOL 2017: the
  pyramid is as deep as it takes for the hole to be about a patch thick at the coarsest
  scale. That scale starts from the harmonic fill of the hole with the straight edges that
  cross it drawn in (core/algorithms/structure.py), and every search also tries the patches
  that continue those edges.
- Darabi, Shechtman, Barnes, Goldman & Sen, "Image Melding", SIGGRAPH 2012: patches are
  compared on colour and luminance gradients, and every vote is blended into the surround in
  the gradient domain (the copies keep their gradients; the mismatch along the hole's edge is
  spread over it as a harmonic membrane, core/algorithms/membrane.py), so the fill's low
  frequencies agree with what is around it.

Work is restricted to the hole's bounding box plus a margin (``context``; by default twice the
size of the hole), and the cost of a pass is proportional to the number of patches that
overlap the hole, not to the image size. Scales whose hole is larger than SEARCH_MAX pixels
are not searched: their field is the coarser one doubled, and they only vote, reading the
picture itself (no float copy of it), so a large fill's cost and memory follow the hole at a
coarser scale. Holes touching the image edge are handled by padding that patch distances
ignore. ``source`` restricts the patches that may be copied.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from dataclasses import field as dataclass_field

import numpy as np
import torch

from core.algorithms.masks import as_bool, bbox, distance_to
from core.algorithms.membrane import fill_harmonic
from core.algorithms.structure import Line, continuations, extend_along, find_lines
from core.jobs import JobError

# Above this many target patches a scale compares patches on a checkerboard half of their
# pixels: the match ranking barely changes and the search costs half as much.
SPARSE_ABOVE = 5_000
# Vote weight alpha^-d for a patch centred d pixels inside the hole (Wexler et al. 2007 sec. 3.2
# use 1.3). Steeper here: with 2.0 a hole on a corner of a periodic texture converges to the
# texture for every seed we tried, with 1.3 some seeds leave a seam where two phases meet.
CONFIDENCE = 3.0
# Depths are capped here: deeper patches all weigh 2^-24, which keeps weight sums far from
# float32 underflow, and past it the neighbours of a pixel differ too little in depth to matter.
CONFIDENCE_REACH = 24
# A scale whose hole has more pixels than this is not searched: its nearest-neighbour field is
# the coarser one's, doubled, and it only votes (full detail is copied from where the coarser
# scale found it). The cost of a large fill then follows the hole at a coarser scale.
SEARCH_MAX = 150_000
FINE_RADIUS = 16  # random-search radius on scales finer than the coarsest
VOTE_SPREAD = 3.0
STRUCTURE = True
RING_SMOOTH = 0  # px: the mismatch averaged over this radius (0 = each ring pixel's own)
CHUNK = 65_536  # target patches per distance computation
# Search and vote run over the targets in bands of this many (row-major, so a band is a strip of
# rows), calling ``check`` before each: a cancel is seen after a bounded amount of work however
# large the hole, and the memory for target patches is one band's, not the whole field's.
BAND = 16_384
STRIP_PIXELS = 1 << 20  # whole-image set-up steps (masks, distances) run in strips this big
# Patches are compared on colour and on the luminance gradient times this (Darabi et al., "Image
# Melding", 2012, sec. 4: gradients in the patch distance favour sources that continue edges).
GRADIENT_WEIGHT = 0.5
# Each vote is blended into its surround in the gradient domain (Perez et al. 2003; Darabi et
# al. 2012 sec. 5): the copied texture keeps its gradients and the mismatch along the hole's
# edge is spread over the hole as a membrane, so its low frequencies agree with the surround.
BLEND = True


@dataclass
class _Scale:
    """One pyramid level, padded by r pixels (edge-replicated) so every patch centred on the
    unpadded area can be read. Coordinates below are in the padded frame."""

    img: np.ndarray  # (H+2r, W+2r, 5) float32: RGB and the weighted luminance gradient;
    # hole pixels hold the current estimate
    hole: np.ndarray  # (H, W) bool, unpadded
    r: int
    ty: np.ndarray  # target patch centres: every centre whose patch overlaps the hole
    tx: np.ndarray
    tid: np.ndarray  # (H+2r, W+2r) int32: index into ty/tx, or -1
    src_ok: np.ndarray  # (H+2r, W+2r) bool: centres of patches fully outside the hole
    src: np.ndarray  # flat indices of src_ok
    confidence: np.ndarray  # (N,) float32 vote weight of each target for being near known pixels
    # candidate sources that continue straight structures: (targets, y, x), padded frame
    guides: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = dataclass_field(
        default_factory=list)

    @property
    def shape(self) -> tuple[int, int]:
        return self.hole.shape

    @property
    def width(self) -> int:  # padded width, the stride of flat indices
        return self.img.shape[1]

    @property
    def flat(self) -> torch.Tensor:  # (N_pixels, C) view sharing memory with img
        return torch.from_numpy(self.img.reshape(-1, self.img.shape[2]))


@dataclass
class _Field:
    """The nearest-neighbour field: target i's best source centre and its patch distance."""

    sy: np.ndarray
    sx: np.ndarray
    cost: np.ndarray


def fill(image: np.ndarray, mask: np.ndarray, *, rng: np.random.Generator,
         patch_size: int = 7, iterations: int = 4, context: int = 0,
         source: np.ndarray | None = None, check: Callable[[], None] | None = None,
         preview: Callable[[np.ndarray], None] | None = None,
         ) -> Generator[tuple[int, int, str], None, np.ndarray]:
    """Fill the masked pixels of ``image`` from the rest of it.

    ``context`` (pixels, 0 = chosen from the hole's size) is how far beyond the hole's
    bounding box the fill may copy from; ``source`` (HxW, nonzero = may copy from here), if
    given, further restricts where: only patches lying wholly inside it are copied.

    Yields ``(step, total, message)`` once per search/vote round and returns the filled HxWx3
    uint8 image; pixels outside the mask are copied unchanged. ``check()`` (it raises to
    cancel) is called before every band of :data:`BAND` target patches and between the
    set-up stages, so it is reached after a bounded amount of work whatever the image size.
    ``preview``, if given, receives the current estimate (HxWx3 uint8) after each scale.
    Raises JobError when nothing outside the mask can be copied from.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise JobError(f"PatchMatch needs an HxWx3 uint8 RGB image, got {image.dtype} "
                       f"{image.shape}.")
    hole = as_bool(mask)
    if hole.shape != image.shape[:2]:
        raise JobError(f"The mask is {hole.shape[1]}x{hole.shape[0]} but the image is "
                       f"{image.shape[1]}x{image.shape[0]}.")
    blocked = None if source is None else ~as_bool(source)
    if blocked is not None and blocked.shape != hole.shape:
        raise JobError(f"The source mask is {blocked.shape[1]}x{blocked.shape[0]} but the "
                       f"image is {image.shape[1]}x{image.shape[0]}.")
    if patch_size < 3 or patch_size % 2 == 0:
        raise JobError(f"The patch size must be an odd number >= 3, got {patch_size}.")
    if iterations < 1:
        raise JobError(f"PatchMatch needs at least one iteration, got {iterations}.")
    if context < 0:
        raise JobError(f"The context must be 0 (automatic) or a number of pixels, got "
                       f"{context}.")
    if not hole.any():
        return image.copy()
    r = patch_size // 2
    check = check or _no_check

    check()
    y0, y1, x0, x1 = _context(hole, blocked, r, context, check)
    # The finest level is the image itself (uint8, not copied); coarser ones are float32.
    crop, crop_hole = image[y0:y1, x0:x1], hole[y0:y1, x0:x1]
    crop_blocked = None if blocked is None else blocked[y0:y1, x0:x1]
    check()
    n_levels = _depth(crop_hole, crop_blocked, r, check)
    pyramid: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = [
        (crop, crop_hole, crop_blocked)]
    while len(pyramid) < n_levels:
        check()
        pyramid.append(_downsample(*pyramid[-1], check))
    # Levels whose hole is larger than SEARCH_MAX pixels are not searched (see _upsampled).
    searched = [lv for lv in range(n_levels)
                if lv == n_levels - 1 or int(pyramid[lv][1].sum()) <= SEARCH_MAX]
    lines = (find_lines(crop, crop_hole, max(4 * r, 12), r + 1.0, check) if STRUCTURE
             else [])
    rounds = _schedule(len(searched), iterations)
    total, step = sum(rounds) + searched[0], 0

    field: _Field | None = None
    coarse: _Scale | None = None
    for k, level in enumerate(searched[::-1]):
        img, hl, bl = pyramid[level]
        n_rounds = rounds[len(searched) - 1 - k]
        check()
        if field is None or coarse is None:
            # The harmonic fill (smooth, and meeting the surround) with the straight edges
            # that cross the hole drawn in: the coarsest scale's first guess. With a source
            # area the edges are not drawn: what the fill shows is the source's to say.
            start = fill_harmonic(img.astype(np.float32), hl, _ring(hl), check)
            if bl is None:
                extend_along(start, hl, _at_level(lines, level))
            sc = _make_scale(start, hl, bl, r, check)
            field = _random_field(sc, rng)
        else:
            sc = _make_scale(img, hl, bl, r, check)
            check()
            field = _upsample_field(field, coarse, sc, rng)
            _vote(sc, field, _offsets(sc.width, r, sparse=False), check)
        sc.guides = [(sel, cy + r, cx + r) for sel, cy, cx in continuations(
            _at_level(lines, level), sc.ty - r, sc.tx - r, r + 1.0)]
        full = _offsets(sc.width, r, sparse=False)
        search = _offsets(sc.width, r, sparse=len(sc.ty) > SPARSE_ABOVE)
        inside = _inside_image(sc)
        field.cost = _initial_cost(sc, field, search, inside, check)
        coarsest = level == len(pyramid) - 1
        passes = 2 if coarsest else 1
        for i in range(n_rounds):
            for p in range(passes):
                _search(sc, field, search, inside, rng, check, reverse=(i + p) % 2 == 1,
                        radius=max(sc.shape) if coarsest else FINE_RADIUS)
            _vote(sc, field, full, check, weighted=True)
            step += 1
            check()
            scale = len(pyramid) - level
            yield step, total, f"scale {scale}/{len(pyramid)}, round {i + 1}/{n_rounds}"
        coarse = sc
        if preview is not None and level > 0:
            check()
            preview(_paste(image, hole, (y0, y1, x0, x1), _unpad(sc), level, check))
    assert coarse is not None and field is not None
    if searched[0] == 0:
        return _paste(image, hole, (y0, y1, x0, x1), _unpad(coarse), 0, check)
    parent = _Upsampled.of_scale(coarse, field)
    for level in range(searched[0] - 1, -1, -1):
        check()
        parent = _upsampled(*pyramid[level], r, parent, rng, check)
        step += 1
        scale = len(pyramid) - level
        yield step, total, f"scale {scale}/{len(pyramid)}, copied at full detail"
        if preview is not None and level > 0:
            check()
            preview(_paste(image, hole, (y0, y1, x0, x1), parent.estimate(pyramid[level][0]),
                           level, check))
    out = image.copy()
    hy, hx = np.nonzero(crop_hole)
    out[hy + y0, hx + x0] = np.clip(np.rint(parent.values), 0, 255).astype(np.uint8)
    return out


def _no_check() -> None:
    pass


def _at_level(lines: list[Line], level: int) -> list[Line]:
    return [ln.scaled(2 ** level) for ln in lines]


def _bands(n: int) -> list[tuple[int, int]]:
    return [(s, min(n, s + BAND)) for s in range(0, n, BAND)]


# --------------------------------------------------------------------------- set-up


def _context(hole: np.ndarray, blocked: np.ndarray | None, r: int, context: int,
             check: Callable[[], None]) -> tuple[int, int, int, int]:
    """The crop to work in: the hole's bounding box plus ``context`` pixels on every side, or
    (``context`` 0) plus twice the hole's size (the fill draws from everything around it; on
    the benchmark photos a margin of 2 scored higher than 1), or the whole image when that
    crop would hold fewer source patches than hole pixels."""
    h, w = hole.shape
    y0, y1, x0, x1 = bbox(hole)  # type: ignore[misc]  # hole is not empty here
    margin = context or 2 * max(y1 - y0, x1 - x0, 4 * r)
    box = (max(0, y0 - margin), min(h, y1 + margin), max(0, x0 - margin), min(w, x1 + margin))
    no_copy = hole if blocked is None else hole | blocked
    n_inside = _source_centres(no_copy[box[0]:box[1], box[2]:box[3]], r, check).sum()
    if context and n_inside:
        return box
    if not context and n_inside >= int(hole.sum()):
        return box
    side = f"{2 * r + 1}x{2 * r + 1}"
    if context and (box[1] - box[0], box[3] - box[2]) != (h, w):
        raise JobError(f"No {side} patch within {context} pixels of the mask can be copied "
                       "from. Widen the context" + (", paint more of the source area"
                                                    if blocked is not None else "") + ".")
    if not _source_centres(no_copy, r, check).any():
        if hole.all():
            raise JobError("The mask covers the whole image: there is nothing left to copy "
                           "from. Leave part of the image unmasked.")
        if blocked is not None:
            raise JobError(f"No {side} patch of the source area lies fully outside the mask, "
                           "so there is nothing to copy from. Paint a larger source area or "
                           "use a smaller patch size.")
        raise JobError(f"No {side} patch of the image lies fully outside the "
                       "mask, so there is nothing to copy from. Shrink the mask or use a "
                       "smaller patch size.")
    return 0, h, 0, w


def _strips(fn: Callable[[np.ndarray], np.ndarray], a: np.ndarray, halo: int,
            check: Callable[[], None]) -> np.ndarray:
    """``fn(a)`` for a row-local ``fn`` (each output row depends only on input rows within
    ``halo``), computed in strips of about STRIP_PIXELS with ``check()`` before each."""
    h = a.shape[0]
    rows = max(1, STRIP_PIXELS // max(1, a.shape[1]))
    parts = []
    for s in range(0, h, rows):
        check()
        lo, hi = max(0, s - halo), min(h, s + rows + halo)
        parts.append(fn(a[lo:hi])[s - lo:s - lo + min(rows, h - s)])
    return np.concatenate(parts) if parts else fn(a)


def _float_copy(img: np.ndarray, r: int, check: Callable[[], None],
                gradients: bool = False) -> np.ndarray:
    """``img`` as float32, padded by ``r`` edge-replicated pixels, copied in strips; with
    ``gradients``, two more channels: the luminance gradient times GRADIENT_WEIGHT."""
    h, w, c = img.shape
    out = np.empty((h + 2 * r, w + 2 * r, c + 2 * gradients), np.float32)
    rows = max(1, STRIP_PIXELS // max(1, w))
    for a in range(0, h, rows):
        check()
        out[r + a:r + min(h, a + rows), r:r + w, :c] = img[a:a + rows]
    if r:
        _refresh_padding(out, r)
    if gradients:
        for a in range(0, out.shape[0], rows):
            check()
            _gradients(out, a, min(out.shape[0], a + rows))
    return out


LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _gradients(img: np.ndarray, a: int, b: int, x0: int = 0, x1: int | None = None) -> None:
    """Channels 3 and 4 of rows ``a:b`` (columns ``x0:x1``) of ``img``: central differences
    of the luminance of channels 0-2 (one-sided at the array's edges), times GRADIENT_WEIGHT."""
    h, w = img.shape[:2]
    x1 = w if x1 is None else x1
    lo, hi = max(0, a - 1), min(h, b + 1)
    xl, xh = max(0, x0 - 1), min(w, x1 + 1)
    lum = img[lo:hi, xl:xh, :3] @ LUMA
    gy = np.gradient(lum, axis=0) if lum.shape[0] > 1 else np.zeros_like(lum)
    gx = np.gradient(lum, axis=1) if lum.shape[1] > 1 else np.zeros_like(lum)
    img[a:b, x0:x1, 3] = GRADIENT_WEIGHT * gx[a - lo:b - lo, x0 - xl:x1 - xl]
    img[a:b, x0:x1, 4] = GRADIENT_WEIGHT * gy[a - lo:b - lo, x0 - xl:x1 - xl]


def _box_count(m: np.ndarray, r: int, check: Callable[[], None] = _no_check) -> np.ndarray:
    """Number of True pixels in the (2r+1)^2 window around each pixel (clipped at edges)."""
    return _strips(lambda a: _box_sum(a, r, np.int32), m, r, check)


def _distance_to(target: np.ndarray, limit: int, check: Callable[[], None]) -> np.ndarray:
    """masks.distance_to, in strips."""
    return _strips(lambda a: distance_to(a, limit), target, limit + 1, check)


def _box_sum(m: np.ndarray, r: int, dtype: type) -> np.ndarray:
    """Sum over the (2r+1)^2 window around each pixel (clipped at edges), by integral image."""
    h, w = m.shape
    s = np.zeros((h + 1, w + 1), dtype)
    np.cumsum(np.cumsum(m, axis=0, dtype=dtype), axis=1, out=s[1:, 1:])
    ya = np.clip(np.arange(h) - r, 0, h)[:, None]
    yb = np.clip(np.arange(h) + r + 1, 0, h)[:, None]
    xa = np.clip(np.arange(w) - r, 0, w)[None, :]
    xb = np.clip(np.arange(w) + r + 1, 0, w)[None, :]
    return s[yb, xb] - s[ya, xb] - s[yb, xa] + s[ya, xa]


def _source_centres(hole: np.ndarray, r: int,
                    check: Callable[[], None] = _no_check) -> np.ndarray:
    """Centres whose patch lies inside the image and fully outside the hole."""
    ok = _strips(lambda a: _box_sum(a, r, np.int32) == 0, hole, r, check)
    ok[:r], ok[ok.shape[0] - r:], ok[:, :r], ok[:, ok.shape[1] - r:] = False, False, False, False
    return ok


def _downsample_mask(hole: np.ndarray) -> np.ndarray:
    """A coarse pixel is hole if any of its four pixels is, so coarse source patches never
    contain a hole pixel."""
    hole = np.pad(hole, ((0, hole.shape[0] % 2), (0, hole.shape[1] % 2)), mode="edge")
    return hole[0::2, 0::2] | hole[1::2, 0::2] | hole[0::2, 1::2] | hole[1::2, 1::2]


def _downsample(img: np.ndarray, hole: np.ndarray, blocked: np.ndarray | None,
                check: Callable[[], None]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Halve with a 2x2 box filter, in strips of an even number of rows."""
    h, w = hole.shape
    out = np.empty(((h + 1) // 2, (w + 1) // 2, img.shape[2]), np.float32)
    rows = 2 * max(1, STRIP_PIXELS // max(1, 2 * w))
    for a in range(0, h, rows):
        check()
        part = img[a:a + rows].astype(np.float32)
        part = np.pad(part, ((0, part.shape[0] % 2), (0, w % 2), (0, 0)), mode="edge")
        out[a // 2:a // 2 + part.shape[0] // 2] = 0.25 * (
            part[0::2, 0::2] + part[1::2, 0::2] + part[0::2, 1::2] + part[1::2, 1::2])
    return out, _downsample_mask(hole), None if blocked is None else _downsample_mask(blocked)


def _depth(hole: np.ndarray, blocked: np.ndarray | None, r: int,
           check: Callable[[], None]) -> int:
    """Number of pyramid levels: halve until the hole is at most a patch thick (Newson et al.
    2017), while the coarser scale is still five patches wide (smaller coarsest scales gave
    worse fills on the benchmark photos) and has patches to copy from."""
    levels = 1
    while _thicker_than(hole, 2 * r + 1, check):
        hole = _downsample_mask(hole)
        if blocked is not None:
            blocked = _downsample_mask(blocked)
        no_copy = hole if blocked is None else hole | blocked
        if (min(hole.shape) < 10 * r + 3
                or _source_centres(no_copy, r, check).sum() < 4 * (2 * r + 1) ** 2):
            break
        levels += 1
    return levels


def _thicker_than(hole: np.ndarray, px: int, check: Callable[[], None]) -> bool:
    """Whether some hole pixel lies farther than ``px`` from every known pixel (the image edge
    does not count as known), i.e. whether masks.shrink(hole, px) keeps anything."""
    return bool((hole & (_distance_to(~hole, px, check) > px)).any())


def _schedule(n_levels: int, iterations: int) -> list[int]:
    """Rounds per scale, finest first: coarse rounds are cheap and settle the structure, so the
    coarsest gets twice as many and the finest (the costly one, already well initialised) half."""
    rounds = [iterations] * n_levels
    rounds[-1] = 2 * iterations
    if n_levels > 1:
        rounds[0] = max(1, iterations // 2)
    return rounds


def _make_scale(img: np.ndarray, hole: np.ndarray, blocked: np.ndarray | None, r: int,
                check: Callable[[], None]) -> _Scale:
    padded = _float_copy(img, r, check, gradients=True)
    near = _box_count(hole, r, check) > 0
    ty, tx = np.nonzero(near)
    ty, tx = ty + r, tx + r
    tid = np.full(padded.shape[:2], -1, np.int32)
    tid[ty, tx] = np.arange(len(ty), dtype=np.int32)
    src_ok = np.pad(_source_centres(hole if blocked is None else hole | blocked, r, check), r)
    depth = _distance_to(~hole, CONFIDENCE_REACH, check)[ty - r, tx - r]
    confidence = np.power(np.float32(CONFIDENCE), -depth).astype(np.float32)
    return _Scale(img=padded, hole=hole, r=r, ty=ty, tx=tx, tid=tid, src_ok=src_ok,
                  src=np.flatnonzero(src_ok), confidence=confidence)


def _offsets(width: int, r: int, sparse: bool) -> torch.Tensor:
    """Flat offsets of a patch's pixels from its centre; ``sparse`` keeps a checkerboard half."""
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    keep = ((dy + dx) % 2 == 0) if sparse else np.ones_like(dy, bool)
    return torch.from_numpy((dy * width + dx)[keep].astype(np.int64))


# --------------------------------------------------------------------------- the field


def _random_field(sc: _Scale, rng: np.random.Generator) -> _Field:
    pick = sc.src[rng.integers(0, len(sc.src), len(sc.ty))]
    sy, sx = np.divmod(pick, sc.width)
    return _Field(sy, sx, np.full(len(sc.ty), np.inf, np.float32))


def _upsample_field(field: _Field, coarse: _Scale, sc: _Scale,
                    rng: np.random.Generator) -> _Field:
    """Each fine target takes its coarse parent's offset, doubled (Wexler et al. 2007, sec. 3.3);
    targets whose parent had none, or whose doubled match is not a source, start at random."""
    r, rc = sc.r, coarse.r
    py = np.minimum((sc.ty - r) // 2, coarse.shape[0] - 1) + rc
    px = np.minimum((sc.tx - r) // 2, coarse.shape[1] - 1) + rc
    j = coarse.tid[py, px]
    has = j >= 0
    jj = np.where(has, j, 0)
    sy = sc.ty + 2 * (field.sy[jj] - py)
    sx = sc.tx + 2 * (field.sx[jj] - px)
    sy, sx = _clip(sc, sy, sx)
    ok = has & sc.src_ok[sy, sx]
    fresh = _random_field(sc, rng)
    return _Field(np.where(ok, sy, fresh.sy), np.where(ok, sx, fresh.sx), fresh.cost)


def _clip(sc: _Scale, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = sc.shape
    r = sc.r
    return np.clip(y, r, h + r - 1), np.clip(x, r, w + r - 1)


def _gather(flat: torch.Tensor, centres: np.ndarray, offs: torch.Tensor) -> torch.Tensor:
    """(n, K, C) patches of the (pixels, C) image ``flat`` around flat ``centres`` (in chunks:
    the index costs 8 bytes a value)."""
    out = torch.empty(len(centres), len(offs), flat.shape[1])
    for s in range(0, len(centres), CHUNK):
        idx = (torch.from_numpy(centres[s:s + CHUNK])[:, None] + offs).reshape(-1)
        torch.index_select(flat, 0, idx, out=out[s:s + CHUNK].view(-1, flat.shape[1]))
    return out


def _inside_image(sc: _Scale) -> torch.Tensor | None:
    """(pixels, 1): 1 on the image, 0 on the padding; None when no target patch reaches the
    padding. Edge-replicated padding is not image content: comparing it would pull the matches
    of a hole on the image edge towards smeared-looking patches."""
    h, w = sc.shape
    r = sc.r
    if sc.ty.min() >= 2 * r and sc.tx.min() >= 2 * r and sc.ty.max() < h and sc.tx.max() < w:
        return None
    return torch.from_numpy(np.pad(np.ones((h, w), np.float32), r).reshape(-1, 1))


class _Targets:
    """The target patches ``start:stop`` (one band) of a search pass, and their distance to
    candidate patches."""

    def __init__(self, sc: _Scale, offs: torch.Tensor, inside: torch.Tensor | None,
                 start: int, stop: int) -> None:
        self.sc, self.offs = sc, offs
        centres = sc.ty[start:stop] * sc.width + sc.tx[start:stop]
        self.patches = _gather(sc.flat, centres, offs)
        if inside is None:
            self.inside = self.scale = None
        else:
            self.inside = _gather(inside, centres, offs)
            self.patches *= self.inside
            self.scale = 1.0 / (sc.img.shape[2] * self.inside.sum(dim=(1, 2)))

    def cost(self, sel: np.ndarray | None, centres: np.ndarray) -> np.ndarray:
        """Mean squared difference per pixel and channel between the band's targets ``sel``
        (None: all) and the patches at flat ``centres`` (padding pixels of the target not
        counted). Computed in chunks so temporaries stay small."""
        n = len(centres)
        out = np.empty(n, np.float32)
        for s in range(0, n, CHUNK):
            e = min(n, s + CHUNK)
            rows = slice(s, e) if sel is None else torch.from_numpy(sel[s:e])
            out[s:e] = self._cost(rows, centres[s:e])
        return out

    def _cost(self, rows: slice | torch.Tensor, centres: np.ndarray) -> np.ndarray:
        def take(t: torch.Tensor) -> torch.Tensor:
            return t[rows] if isinstance(rows, slice) else t.index_select(0, rows)

        b = _gather(self.sc.flat, centres, self.offs)
        if self.inside is not None:
            b *= take(self.inside)
        d = b.sub_(take(self.patches)).view(len(centres), -1)
        sq = torch.linalg.vector_norm(d, dim=1).square_()  # several times einsum's speed
        return (sq / d.shape[1] if self.scale is None else sq * take(self.scale)).numpy()


def _initial_cost(sc: _Scale, field: _Field, offs: torch.Tensor, inside: torch.Tensor | None,
                  check: Callable[[], None]) -> np.ndarray:
    """The patch distance of every target to its current match, band by band."""
    cost = np.empty(len(sc.ty), np.float32)
    for s, e in _bands(len(sc.ty)):
        check()
        cost[s:e] = _Targets(sc, offs, inside, s, e).cost(
            None, field.sy[s:e] * sc.width + field.sx[s:e])
    return cost


def _search(sc: _Scale, field: _Field, offs: torch.Tensor, inside: torch.Tensor | None,
            rng: np.random.Generator, check: Callable[[], None], reverse: bool,
            radius: int | None = None) -> None:
    """One PatchMatch pass (Barnes et al. 2009, sec. 3.2), one band of targets at a time, the
    bands in scan order (reversed on odd passes) so that improvements propagate along it."""
    bands = _bands(len(sc.ty))
    for start, stop in bands[::-1] if reverse else bands:
        check()
        _search_band(sc, field, offs, inside, rng, start, stop, reverse,
                     radius or max(sc.shape))


def _search_band(sc: _Scale, field: _Field, offs: torch.Tensor, inside: torch.Tensor | None,
                 rng: np.random.Generator, start: int, stop: int, reverse: bool,
                 radius: int) -> None:
    """The pass for targets ``start:stop``, all of them at once."""
    wd = sc.width
    targets = _Targets(sc, offs, inside, start, stop)  # the image is fixed during the pass
    n = stop - start
    everyone = np.arange(n)

    def attempt(sel: np.ndarray, cy: np.ndarray, cx: np.ndarray) -> None:
        cy, cx = _clip(sc, cy, cx)
        ok = sc.src_ok[cy, cx]
        if not ok.all():
            sel, cy, cx = sel[ok], cy[ok], cx[ok]
        if len(sel) == 0:
            return
        if n > len(sel) > n // 2:
            # Most of the band: compare every target (the others with a candidate that
            # cannot win) rather than gather the chosen targets' patches again.
            tried = np.zeros(n, bool)
            tried[sel] = True
            cy_all, cx_all = field.sy[start:stop].copy(), field.sx[start:stop].copy()
            cy_all[sel], cx_all[sel] = cy, cx
            d = targets.cost(None, cy_all * wd + cx_all)
            better = tried & (d < field.cost[start:stop])
            sel = start + np.flatnonzero(better)
            field.sy[sel], field.sx[sel], field.cost[sel] = (cy_all[better], cx_all[better],
                                                             d[better])
            return
        d = targets.cost(None if len(sel) == n else sel, cy * wd + cx)
        better = d < field.cost[start + sel]
        sel = start + sel[better]
        field.sy[sel], field.sx[sel], field.cost[sel] = cy[better], cx[better], d[better]

    ty, tx = sc.ty[start:stop], sc.tx[start:stop]
    # Propagation: try the neighbour's match shifted along. One direction at a time, so a good
    # match can cross the band in the order of the scan, as in the sequential algorithm.
    steps = [(0, 1), (1, 0), (0, -1), (-1, 0)]
    for dy, dx in steps[::-1] if reverse else steps:
        j = sc.tid[ty - dy, tx - dx]
        sel = np.flatnonzero(j >= 0)
        j = j[sel]
        attempt(sel, field.sy[j] + dy, field.sx[j] + dx)
    # Structure: the patches that continue a straight edge across the hole (structure.py).
    for sel, cy, cx in sc.guides:
        mine = (sel >= start) & (sel < stop)
        if mine.any():
            attempt(sel[mine] - start, cy[mine], cx[mine])
    # Random search around the current match, radius halving.
    while radius >= 1:
        attempt(everyone, field.sy[start:stop] + rng.integers(-radius, radius + 1, n),
                field.sx[start:stop] + rng.integers(-radius, radius + 1, n))
        radius //= 2
    # One uniformly random source each: lets isolated targets escape a poor basin.
    pick = sc.src[rng.integers(0, len(sc.src), n)]
    attempt(everyone, pick // wd, pick % wd)


# --------------------------------------------------------------------------- the vote


def _vote(sc: _Scale, field: _Field, offs: torch.Tensor, check: Callable[[], None],
          weighted: bool = False) -> None:
    """Re-estimate every hole pixel as the weighted mean of what the overlapping patches' matches
    say it should be (Wexler et al. 2007, eq. 3-4), then refresh the edge padding."""
    wd, r = sc.width, sc.r
    w = sc.confidence
    if weighted and np.isfinite(field.cost).all():
        sigma2 = max(VOTE_SPREAD * float(np.percentile(field.cost, 75)), 1e-6)
        # Capped so that even a pixel covered only by poor matches keeps a usable weight sum.
        w = w * np.exp(-np.minimum(field.cost / (2.0 * sigma2), 30.0)).astype(np.float32)
    img = sc.flat
    acc = torch.zeros_like(img)
    wsum = torch.zeros(img.shape[0], dtype=torch.float32)
    for s, e in _bands(len(sc.ty)):
        check()
        wt = torch.from_numpy(w[s:e])[:, None]
        tflat = torch.from_numpy(sc.ty[s:e] * wd + sc.tx[s:e])
        sflat = torch.from_numpy(field.sy[s:e] * wd + field.sx[s:e])
        # One offset at a time: the destinations t + o are then distinct, so the scatter-add
        # is deterministic.
        for o in offs.tolist():
            acc.index_add_(0, tflat + o, torch.index_select(img, 0, sflat + o) * wt)
            wsum.index_add_(0, tflat + o, wt[:, 0])
    check()
    hy, hx = np.nonzero(sc.hole)
    hflat = torch.from_numpy((hy + r) * wd + hx + r)
    new = acc.index_select(0, hflat) / wsum.index_select(0, hflat).clamp_min(1e-30)[:, None]
    if BLEND:
        new[:, :3] += torch.from_numpy(_membrane(sc, acc, wsum, check))
    img.index_copy_(0, hflat, new)
    _refresh_padding(sc.img, r)


def _membrane(sc: _Scale, acc: torch.Tensor, wsum: torch.Tensor,
              check: Callable[[], None]) -> np.ndarray:
    """_blend for a searched scale (padded frame; ``acc``/``wsum`` its vote's sums)."""
    r, wd = sc.r, sc.width

    def at(t: torch.Tensor, ys: np.ndarray, xs: np.ndarray) -> torch.Tensor:
        return t.index_select(0, torch.from_numpy((ys + r) * wd + xs + r))

    return _blend(sc.hole, r, lambda ys, xs: at(sc.flat, ys, xs)[:, :3],
                  lambda ys, xs: at(acc, ys, xs)[:, :3]
                  / at(wsum, ys, xs).clamp_min(1e-30)[:, None], check)


def _blend(hole: np.ndarray, r: int, known: Callable[[np.ndarray, np.ndarray], torch.Tensor],
           copied: Callable[[np.ndarray, np.ndarray], torch.Tensor],
           check: Callable[[], None]) -> np.ndarray:
    """The gradient-domain blend of a vote: per hole pixel (np.nonzero order), the RGB
    correction that makes the vote meet the known pixels around the hole while keeping its
    gradients: the harmonic membrane (membrane.fill_harmonic) of the mismatch between the
    ``known`` pixels and what the ``copied`` patches put there, on the ring around the hole.
    With RING_SMOOTH > 0 the mismatch is averaged over the known pixels that near around each
    ring pixel (less of one ring's noise spreads into the hole, but seams show where an edge
    crosses the ring: 0 scored best on the tuning photos)."""
    h, w = hole.shape
    y0, y1, x0, x1 = bbox(hole)  # type: ignore[misc]  # hole is not empty here
    k = RING_SMOOTH
    m = 2 * k + 1
    box = (max(0, y0 - m), min(h, y1 + m), max(0, x0 - m), min(w, x1 + m))
    local = hole[box[0]:box[1], box[2]:box[3]]
    ring = _ring(local)
    band = (_box_sum(local, max(k, 1), np.int32) > 0) & ~local
    by, bx = np.nonzero(band)
    d = np.zeros((*local.shape, 3), np.float64)
    d[by, bx] = (known(by + box[0], bx + box[2]) - copied(by + box[0], bx + box[2])).numpy()
    check()
    count = np.maximum(_box_sum(band, k, np.int32), 1)
    vals = np.zeros((*local.shape, 3), np.float32)
    ry, rx = np.nonzero(ring)
    for c in range(3):
        vals[ry, rx, c] = _box_sum(d[..., c], k, np.float64)[ry, rx] / count[ry, rx]
    return fill_harmonic(vals, local, ring, check)[local]


def _refresh_padding(img: np.ndarray, r: int) -> None:
    img[:r] = img[r:r + 1]
    img[img.shape[0] - r:] = img[img.shape[0] - r - 1:img.shape[0] - r]
    img[:, :r] = img[:, r:r + 1]
    img[:, img.shape[1] - r:] = img[:, img.shape[1] - r - 1:img.shape[1] - r]


# --------------------------------------------------------------------------- output


def _unpad(sc: _Scale) -> np.ndarray:
    r = sc.r
    return sc.img[r:sc.img.shape[0] - r, r:sc.img.shape[1] - r]


def _paste(image: np.ndarray, hole: np.ndarray, box: tuple[int, int, int, int],
           crop: np.ndarray, level: int, check: Callable[[], None]) -> np.ndarray:
    """The image with its hole taken from ``crop`` (a scale ``level`` estimate of the box),
    built in strips of rows with ``check()`` before each."""
    y0, y1, x0, x1 = box
    f = 2 ** level
    h, w = hole.shape
    out = np.empty_like(image)
    rows = max(1, STRIP_PIXELS // max(1, w))
    for a in range(0, h, rows):
        check()
        b = min(h, a + rows)
        out[a:b] = image[a:b]
        lo, hi = max(a, y0), min(b, y1)
        m = hole[lo:hi, x0:x1]
        if lo >= hi or not m.any():
            continue
        part = crop[(lo - y0) // f:(hi - 1 - y0) // f + 1, :, :3]
        if f > 1:  # each coarse pixel covers f x f pixels
            part = np.repeat(np.repeat(part, f, axis=0), f, axis=1)[(lo - y0) % f:]
        part = part[:hi - lo, :x1 - x0]
        out[lo:hi, x0:x1][m] = np.clip(np.rint(part[m]), 0, 255).astype(np.uint8)
    return out


# --------------------------------------------------------------------------- upsampled scales


@dataclass
class _Upsampled:
    """A scale filled by upsampling the coarser field and voting once (no search). Unpadded
    coordinates throughout; only the target patches' neighbourhood is held, not the scale."""

    ty: np.ndarray  # target patch centres
    tx: np.ndarray
    sy: np.ndarray  # their source centres
    sx: np.ndarray
    quality: np.ndarray  # (N,) float32 how well each target matched, in (0, 1]
    lookup: Callable[[np.ndarray, np.ndarray], np.ndarray]  # (y, x) -> target index or -1
    hole: np.ndarray
    values: np.ndarray  # (n_hole, 3) float32: the hole pixels (np.nonzero order)

    @staticmethod
    def of_scale(sc: _Scale, field: _Field) -> _Upsampled:
        r = sc.r
        sigma2 = max(VOTE_SPREAD * float(np.percentile(field.cost, 75)), 1e-6)
        quality = np.exp(-np.minimum(field.cost / (2.0 * sigma2), 30.0)).astype(np.float32)
        hy, hx = np.nonzero(sc.hole)
        return _Upsampled(sc.ty - r, sc.tx - r, field.sy - r, field.sx - r, quality,
                          lambda y, x: sc.tid[y + r, x + r], sc.hole,
                          sc.img[hy + r, hx + r, :3].copy())

    def estimate(self, img: np.ndarray) -> np.ndarray:
        """The scale's image (float32 copy of ``img``) with the hole filled."""
        out = img.astype(np.float32)
        out[self.hole] = self.values
        return out


def _upsampled(img: np.ndarray, hole: np.ndarray, blocked: np.ndarray | None, r: int,
               parent: _Upsampled, rng: np.random.Generator,
               check: Callable[[], None]) -> _Upsampled:
    """One scale without search: every target takes its coarse parent's offset doubled
    (Wexler et al. 2007, sec. 3.3), the matches vote with their parents' weights, and the vote
    is blended into the surround (_membrane)."""
    h, w = hole.shape
    # Targets and their depth, worked out in the hole's box grown by r (not the whole scale).
    y0, y1, x0, x1 = bbox(hole)  # type: ignore[misc]  # hole is not empty here
    gy0, gx0 = max(0, y0 - r - 1), max(0, x0 - r - 1)
    grown = hole[gy0:min(h, y1 + r + 1), gx0:min(w, x1 + r + 1)]
    ty, tx = np.nonzero(_box_count(grown, r, check) > 0)
    depth = _distance_to(~grown, CONFIDENCE_REACH, check)[ty, tx]
    ty, tx = ty + gy0, tx + gx0
    py = np.minimum(ty // 2, parent.hole.shape[0] - 1)
    px = np.minimum(tx // 2, parent.hole.shape[1] - 1)
    j = parent.lookup(py, px)
    has = j >= 0
    jj = np.where(has, j, 0)
    sy = np.clip(ty + 2 * (parent.sy[jj] - py), r, h - r - 1)
    sx = np.clip(tx + 2 * (parent.sx[jj] - px), r, w - r - 1)
    check()
    src_ok = _source_centres(hole if blocked is None else hole | blocked, r, check)
    bad = np.flatnonzero(~(has & src_ok[sy, sx]))
    for _ in range(64):  # targets without a usable parent: random sources, by rejection
        if len(bad) == 0:
            break
        cy = rng.integers(r, h - r, len(bad))
        cx = rng.integers(r, w - r, len(bad))
        ok = src_ok[cy, cx]
        sy[bad[ok]], sx[bad[ok]] = cy[ok], cx[ok]
        bad = bad[~ok]
    if len(bad):  # a source area too small to hit at random: its first patch
        first = np.flatnonzero(src_ok)[0]
        sy[bad], sx[bad] = divmod(first, w)
    del src_ok
    quality = parent.quality[jj] * has + (~has) * np.float32(1e-3)
    weight = (quality * np.power(np.float32(CONFIDENCE), -depth)).astype(np.float32)

    # The vote, in a local frame around the targets' patches.
    ly, lx = int(ty.min()) - r, int(tx.min()) - r
    lh, lw = int(ty.max()) + r + 1 - ly, int(tx.max()) + r + 1 - lx
    acc = torch.zeros(lh * lw, 3)
    wsum = torch.zeros(lh * lw)
    src = torch.from_numpy(np.ascontiguousarray(img).reshape(-1, 3))
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    for s, e in _bands(len(ty)):
        check()
        wt = torch.from_numpy(weight[s:e])
        tloc = torch.from_numpy((ty[s:e] - ly) * lw + tx[s:e] - lx)
        sflat = torch.from_numpy(sy[s:e] * w + sx[s:e])
        for oy, ox in zip(dy.ravel().tolist(), dx.ravel().tolist(), strict=True):
            vals = torch.index_select(src, 0, sflat + (oy * w + ox)).float()
            acc.index_add_(0, tloc + (oy * lw + ox), vals * wt[:, None])
            wsum.index_add_(0, tloc + (oy * lw + ox), wt)
    check()
    hy, hx = np.nonzero(hole)
    hl = torch.from_numpy((hy - ly) * lw + hx - lx)
    values = acc.index_select(0, hl) / wsum.index_select(0, hl).clamp_min(1e-30)[:, None]
    if BLEND:
        def at(t: torch.Tensor, ys: np.ndarray, xs: np.ndarray) -> torch.Tensor:
            return t.index_select(0, torch.from_numpy((ys - ly) * lw + xs - lx))

        values += torch.from_numpy(_blend(
            hole, r, lambda ys, xs: torch.from_numpy(img[ys, xs].astype(np.float32)),
            lambda ys, xs: at(acc, ys, xs) / at(wsum, ys, xs).clamp_min(1e-30)[:, None],
            check))
    lookup_ids = np.full((lh, lw), -1, np.int32)
    lookup_ids[ty - ly, tx - lx] = np.arange(len(ty), dtype=np.int32)

    def lookup(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        yy, xx = y - ly, x - lx
        inside = (yy >= 0) & (yy < lh) & (xx >= 0) & (xx < lw)
        return np.where(inside, lookup_ids[np.clip(yy, 0, lh - 1), np.clip(xx, 0, lw - 1)], -1)

    return _Upsampled(ty, tx, sy, sx, quality.astype(np.float32), lookup, hole,
                      values.numpy())


def _ring(hole: np.ndarray) -> np.ndarray:
    """Pixels next to (4-neighbours of) the hole that are not in it."""
    g = np.pad(hole, 1)
    return (g[2:, 1:-1] | g[:-2, 1:-1] | g[1:-1, 2:] | g[1:-1, :-2]) & ~hole
