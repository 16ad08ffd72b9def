"""From a picture to a fit target: read and check it, find the subject, crop it the way the model's training
data was cropped, and make a first camera estimate.

* Face models (FFHQ-like): OpenCV's Haar cascades (they ship inside the opencv-python-headless wheel,
  so nothing is downloaded) find the face and its eyes; the crop follows the FFHQ alignment rule
  (a square centred a little below the eyes, sized from the eye-to-eye and eye-to-mouth vectors,
  rotated so the eyes are level; the mouth is placed from the face box, Haar has no mouth model);
  yaw and pitch come from where the eyes sit in the face box. A rough estimate: the fit refines it.
* Cat models (AFHQ-like): the cat-face cascade; a square around the face box (ears included).
* Object models (the built-in heads, cars): the object is segmented from its background (pixels
  that differ from the border colour, flood-filled from the border so dark pixels inside stay),
  re-framed only when it is clearly off-centre or of the wrong size for the model, composited over
  the model's background, and yaw/pitch come from a grid search over mean-latent renders.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from ..camera import default_focal, orbit_camera
from ..model.generator import TriPlaneGenerator
from ..progress import CancelToken
from .compare import resize, to_uint8
from .fit import Fitter
from .pose import PITCH_GRID, YAW_GRID, grid_search, mean_ws
from .settings import CameraGuess, FitResult, FitSettings, FitTarget

MIN_SIDE = 64
"""Pictures smaller than this (either side) are refused."""
MAX_PIXELS = 50_000_000
"""Pictures larger than this many pixels are refused (PIL's decompression-bomb guard is 89 MP)."""
MIN_FACE = 40
"""Smallest face (box side, pixels) the detector may report."""
SUBJECTS = ("face", "cat", "object")


class FitInputError(ValueError):
    """A picture the fit cannot use: one readable line."""


@dataclass
class Prepared:
    """A picture ready to fit: target image (3, R, R) on [-1, 1] at the model's img_resolution, optional object
    mask (1, R, R), the crop as uint8 (R, R, 3), the camera estimate, the subject kind, and what was done."""

    image: torch.Tensor
    mask: torch.Tensor | None
    crop: np.ndarray
    camera: CameraGuess
    subject: str
    notes: list[str] = field(default_factory=list)
    boxes: dict = field(default_factory=dict)

    def target(self) -> FitTarget:
        return FitTarget(self.image, self.mask)


def load_image(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a picture -> RGB uint8 (H, W, 3) and its alpha (H, W) uint8 or None (when absent or all opaque).

    Raises FitInputError for a missing or non-image file, greyscale pictures, or a size out of range."""
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FitInputError(f"no such file: {p}")
    try:
        with Image.open(p) as opened:
            im: Image.Image = opened
            w, h = im.size
            check_size(w, h, p)
            im.load()
            mode = im.mode
            if mode in ("L", "LA", "1", "I", "I;16", "F"):
                raise FitInputError(f"{p} is a greyscale picture; the fit needs a colour photo")
            if mode == "P":
                im = im.convert("RGBA")
                mode = "RGBA"
            alpha = np.asarray(im.getchannel("A")) if mode in ("RGBA", "LA", "PA") else None
            rgb = np.asarray(im.convert("RGB"))
    except FitInputError:
        raise
    except (Image.DecompressionBombError, OSError, ValueError, SyntaxError) as e:
        raise FitInputError(f"{p} is not a picture PIL can read ({type(e).__name__}: {e})") from None
    if is_greyscale(rgb):
        raise FitInputError(f"{p} is a greyscale picture (all three channels equal); the fit needs a colour photo")
    if alpha is not None and int(alpha.min()) == 255:
        alpha = None
    return rgb.copy(), None if alpha is None else alpha.copy()


def check_size(w: int, h: int, name: str = "the picture") -> None:
    """FitInputError when a picture is too small or too large."""
    if min(w, h) < MIN_SIDE:
        raise FitInputError(f"{name} is {w}x{h} pixels; at least {MIN_SIDE} on each side is needed")
    if w * h > MAX_PIXELS:
        raise FitInputError(f"{name} is {w}x{h} pixels, more than {MAX_PIXELS // 1_000_000} MP; scale it down first")


def is_greyscale(rgb: np.ndarray) -> bool:
    """All three channels (nearly) equal."""
    small = rgb[:: max(1, rgb.shape[0] // 256), :: max(1, rgb.shape[1] // 256)].astype(np.int16)
    return bool(np.abs(small[..., 0] - small[..., 1]).max() <= 2 and np.abs(small[..., 1] - small[..., 2]).max() <= 2)


def subject_kind(G: TriPlaneGenerator) -> str:
    """What kind of pictures a model takes: 'object' for models with a white background (ShapeNet) or no camera
    conditioning of their own kind (the built-in heads), 'cat' for AFHQ's pivot, else 'face' (FFHQ)."""
    rk = G.rendering_kwargs
    if rk.get("white_back") or G.c_dim == 0 or rk.get("occupancy_resolution"):
        return "object"
    pivot = [float(v) for v in rk.get("avg_camera_pivot", (0, 0, 0.2))]
    if abs(pivot[2] + 0.06) < 1e-3:
        return "cat"
    return "face"


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> (3, H, W) on [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 127.5 - 1


# ----------------------------------------------------------------- objects
def segment(rgb: torch.Tensor, tolerance: float = 0.08) -> torch.Tensor:
    """(3, H, W) on [-1, 1] -> object mask (H, W) bool: not connected to the border through background-coloured
    pixels (within `tolerance` of the border's median colour, on [0, 1])."""
    from scipy import ndimage

    # the outermost pixels of a super-resolved render carry the convolutions' padding artefacts: the
    # background colour is read just inside them, and the frame itself counts as background
    ring = max(1, min(rgb.shape[-2:]) // 64)
    r0, r1 = ring, 2 * ring
    band = torch.cat(
        [
            rgb[:, r0:r1].flatten(1),
            rgb[:, -r1:-r0].flatten(1),
            rgb[:, r0:-r0, r0:r1].flatten(1),
            rgb[:, r0:-r0, -r1:-r0].flatten(1),
        ],
        dim=1,
    )
    bg = band.median(dim=1).values
    close = ((rgb - bg[:, None, None]).abs().amax(0) / 2 <= tolerance).numpy()
    close[:ring], close[-ring:], close[:, :ring], close[:, -ring:] = True, True, True, True
    labels, _ = ndimage.label(close)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    background = np.isin(labels, edge[edge > 0])
    obj = ~background
    lab, n = ndimage.label(obj)
    if n > 1:
        sizes = ndimage.sum(obj, lab, range(1, n + 1))
        obj = lab == (1 + int(np.argmax(sizes)))
    return torch.from_numpy(ndimage.binary_fill_holes(obj))


def _bbox(mask: np.ndarray) -> tuple[float, float, float, float]:
    """Centre x, centre y, width, height of a mask's bounding box, in pixels."""
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    return (x0 + x1) / 2, (y0 + y1) / 2, float(x1 - x0), float(y1 - y0)


def _similarity(img: torch.Tensor, scale: float, shift: tuple[float, float], fill: float) -> torch.Tensor:
    """Zoom (N, C, R, R) by `scale` about the centre and move it by shift (pixels, x and y); `fill` outside."""
    import torch.nn.functional as F

    n, c, h, w = img.shape
    theta = torch.tensor([[1 / scale, 0, -2 * shift[0] / w / scale], [0, 1 / scale, -2 * shift[1] / h / scale]])
    grid = F.affine_grid(theta[None].float(), [n, c, h, w], align_corners=False)
    out = F.grid_sample(img - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + fill


def prepare_object(
    G: TriPlaneGenerator,
    image: torch.Tensor | np.ndarray,
    alpha: np.ndarray | None = None,
    yaws: tuple[float, ...] = YAW_GRID,
    pitches: tuple[float, ...] = PITCH_GRID,
    camera: CameraGuess | None = None,
    cancel: CancelToken | None = None,
) -> Prepared:
    """An object picture (uint8 (H, W, 3) or (3, H, W) on [-1, 1]) -> target at the model's resolution, mask,
    and a camera from the grid search (or the given camera). A tensor on a GPU is brought to the CPU, where the
    picture is segmented and framed."""
    res = G.img_resolution
    img = to_tensor(image) if isinstance(image, np.ndarray) else image.detach().float().cpu()
    if img.shape[-1] != img.shape[-2]:  # pad to a square with the border colour
        side = max(img.shape[-2:])
        border = torch.cat([img[:, 0], img[:, -1], img[:, :, 0], img[:, :, -1]], dim=1).median(dim=1).values
        sq = border[:, None, None].expand(3, side, side).clone()
        y0, x0 = (side - img.shape[-2]) // 2, (side - img.shape[-1]) // 2
        sq[:, y0 : y0 + img.shape[-2], x0 : x0 + img.shape[-1]] = img
        img = sq
        if alpha is not None:
            a = np.zeros((side, side), np.uint8)
            a[y0 : y0 + alpha.shape[0], x0 : x0 + alpha.shape[1]] = alpha
            alpha = a
    img = resize(img[None], res)[0]
    notes = []
    if alpha is not None:
        mask = resize(torch.from_numpy(alpha).float()[None, None] / 255, res)[0, 0] > 0.5
        notes.append("object mask from the picture's alpha channel")
    else:
        mask = segment(img)
        notes.append("object segmented from the border colour")
    if mask.sum() < 16:
        raise FitInputError("no object found: the picture looks like plain background")
    bg = 1.0 if G.rendering_kwargs.get("white_back") else -1.0
    # where the model puts an average object: the mean latent's silhouette at the frontal camera
    ref = _mean_silhouette(G, res)
    cx, cy, bw, bh = _bbox(mask.numpy())
    rx, ry, rw, rh = _bbox(ref)
    scale = math.sqrt((rw * rh) / max(bw * bh, 1.0))
    shift = (rx - cx, ry - cy)
    m = mask.float()[None, None]
    if abs(math.log(scale)) > math.log(1.25) or math.hypot(*shift) > 0.1 * res:
        img = _similarity((img * m + bg * (1 - m)), scale, (shift[0] * scale, shift[1] * scale), bg)[0]
        m = (_similarity(m, scale, (shift[0] * scale, shift[1] * scale), 0.0) > 0.5).float()
        notes.append(f"re-framed: scaled x{scale:.2f}, moved ({shift[0]:.0f}, {shift[1]:.0f}) px")
    img = img * m[0] + bg * (1 - m[0])
    mask_t = m[0]
    if camera is None:
        search = grid_search(G, img, mask_t, yaws, pitches, cancel=cancel)
        camera = CameraGuess(search.yaw, search.pitch)
        notes.append(
            f"camera from a {len(pitches)}x{len(yaws)} grid search: yaw {search.yaw:+.2f}, pitch {search.pitch:+.2f}"
        )
    return Prepared(img, mask_t, to_uint8(img), camera, "object", notes)


@torch.no_grad()
def _mean_silhouette(G: TriPlaneGenerator, res: int) -> np.ndarray:
    """The mean latent's opacity > 0.5 at the frontal camera, (res, res) bool."""
    rk = G.rendering_kwargs
    cam = orbit_camera(
        0.0,
        0.0,
        float(rk.get("avg_camera_radius", 2.7)),
        rk.get("avg_camera_pivot", (0, 0, 0)),
        focal=default_focal(rk),
    )
    ws = mean_ws(G)
    out = G.synthesis(ws, cam[None].to(ws.device), neural_rendering_resolution=min(res, 64), superresolution=False)
    alpha = resize(out["image_alpha"], res)[0, 0].cpu()
    sil = (alpha > 0.5).numpy()
    if sil.sum() == 0:
        sil[res // 4 : 3 * res // 4, res // 4 : 3 * res // 4] = True
    return sil


# ----------------------------------------------------------------- faces
def _cv2():
    try:
        import cv2
    except ImportError:
        raise FitInputError(
            "face detection needs OpenCV: pip install opencv-python-headless (its wheel carries the Haar cascades)"
        ) from None
    return cv2


def _cascade(name: str):
    cv2 = _cv2()
    path = os.path.join(cv2.data.haarcascades, name)
    c = cv2.CascadeClassifier(path)
    if c.empty():
        raise FitInputError(f"OpenCV's cascade {name} is missing from its package ({path})")
    return c


def detect_faces(rgb: np.ndarray, subject: str = "face") -> list[tuple[int, int, int, int]]:
    """Face boxes (x, y, w, h), largest first, from the frontal-face (or cat-face) Haar cascade."""
    cv2 = _cv2()
    grey = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    name = "haarcascade_frontalcatface.xml" if subject == "cat" else "haarcascade_frontalface_default.xml"
    min_face = max(MIN_FACE, min(rgb.shape[:2]) // 12)
    neighbours = 3 if subject == "cat" else 6  # the cat cascade is weaker: fewer overlapping hits suffice
    boxes = _cascade(name).detectMultiScale(
        grey, scaleFactor=1.05 if subject == "cat" else 1.1, minNeighbors=neighbours, minSize=(min_face, min_face)
    )
    found = [(int(b[0]), int(b[1]), int(b[2]), int(b[3])) for b in (boxes if len(boxes) else [])]
    return sorted(found, key=lambda b: -b[2] * b[3])


def detect_eyes(rgb: np.ndarray, face: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray] | None:
    """Left and right eye centres (image x, y; left = smaller x) inside the upper part of a face box, or None."""
    cv2 = _cv2()
    x, y, w, h = face
    roi = cv2.equalizeHist(cv2.cvtColor(rgb[y : y + int(0.6 * h), x : x + w], cv2.COLOR_RGB2GRAY))
    eyes = _cascade("haarcascade_eye.xml").detectMultiScale(
        roi, scaleFactor=1.05, minNeighbors=4, minSize=(max(8, w // 10), max(8, w // 10)), maxSize=(w // 2, w // 2)
    )
    centres = [np.array([x + ex + ew / 2, y + ey + eh / 2]) for ex, ey, ew, eh in (eyes if len(eyes) else [])]
    left = [c for c in centres if c[0] < x + w / 2]
    right = [c for c in centres if c[0] >= x + w / 2]
    if not left or not right:
        return None
    # the pair closest to level and to the typical eye height
    best = min(
        ((a, b) for a in left for b in right),
        key=lambda ab: abs(ab[0][1] - ab[1][1]) + abs((ab[0][1] + ab[1][1]) / 2 - (y + 0.4 * h)),
    )
    return best


def ffhq_quad(eye_l: np.ndarray, eye_r: np.ndarray, mouth: np.ndarray) -> np.ndarray:
    """The FFHQ alignment square (4 corners, x y) from the eye centres and the mouth centre: centred 0.1 of the
    eye-to-mouth vector below the eyes' midpoint, half-side max(2 x eye distance, 1.8 x eye-to-mouth distance),
    its x axis along the eye line made perpendicular to the eye-to-mouth vector."""
    eye_avg = (eye_l + eye_r) / 2
    eye_to_eye = eye_r - eye_l
    eye_to_mouth = mouth - eye_avg
    xa = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    xa = xa / np.hypot(*xa)
    half = max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    xa = xa * half
    ya = np.array([-xa[1], xa[0]])
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - xa - ya, c - xa + ya, c + xa + ya, c + xa - ya])


def warp_quad(rgb: np.ndarray, quad: np.ndarray, res: int) -> np.ndarray:
    """The square `quad` (corners: top-left, bottom-left, bottom-right, top-right) resampled to res x res;
    outside the picture, the nearest edge pixels are repeated."""
    cv2 = _cv2()
    src = quad[[0, 3, 1]].astype(np.float32)
    dst = np.array([[0, 0], [res, 0], [0, res]], dtype=np.float32)
    m = cv2.getAffineTransform(src, dst)
    side = float(np.hypot(*(quad[3] - quad[0])))
    interp = cv2.INTER_AREA if side > res else cv2.INTER_LINEAR
    if side > 2 * res:  # shrink in two steps: INTER_AREA only applies to a pure scaling
        f = res * 2 / side
        small = cv2.resize(rgb, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        return warp_quad(small, quad * f, res)
    return cv2.warpAffine(rgb, m, (res, res), flags=interp, borderMode=cv2.BORDER_REPLICATE)


def check_box(box: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int]:
    """A user's face or object box (x, y, w, h in picture pixels), checked: FitInputError unless it lies in the
    picture and is at least MIN_FACE pixels a side."""
    x, y, w, h = (int(v) for v in box)
    if w < MIN_FACE or h < MIN_FACE:
        raise FitInputError(f"the box {w}x{h} is too small: at least {MIN_FACE} pixels a side")
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise FitInputError(f"the box x {x}, y {y}, {w}x{h} does not lie inside the {width}x{height} picture")
    return x, y, w, h


def prepare_face(
    G: TriPlaneGenerator,
    rgb: np.ndarray,
    subject: str = "face",
    camera: CameraGuess | None = None,
    box: tuple[int, int, int, int] | None = None,
) -> Prepared:
    """A photo (uint8 (H, W, 3)) of one human (or cat) face -> aligned crop, target and camera estimate.
    `box` (x, y, w, h) gives the face box instead of the detector (when it misses or picks the wrong one)."""
    check_size(rgb.shape[1], rgb.shape[0])
    what = "cat face" if subject == "cat" else "face"
    if box is not None:
        boxes = [check_box(box, rgb.shape[1], rgb.shape[0])]
    else:
        boxes = detect_faces(rgb, subject)
    if not boxes:
        raise FitInputError(
            f"no {what} found in the picture (OpenCV Haar cascade, frontal {what}s only); give its box by hand"
        )
    if len(boxes) > 1 and boxes[1][2] * boxes[1][3] > 0.25 * boxes[0][2] * boxes[0][3]:
        raise FitInputError(f"{len(boxes)} {what}s found in the picture; crop it to one or give the box by hand")
    x, y, w, h = boxes[0]
    notes = [f"{what} {'box given' if box is not None else 'found'} at x {x}, y {y}, {w}x{h} px"]
    res = G.img_resolution
    boxes_out: dict = {"face": [x, y, w, h]}
    yaw = pitch = 0.0
    if subject == "cat":
        c = np.array([x + w / 2, y + 0.4 * h])
        half = 1.1 * w
        quad = np.array([c + [-half, -half], c + [-half, half], c + [half, half], c + [half, -half]])
        notes.append("cat crop: a square of 2.2 face widths around the face box (ears included)")
    else:
        eyes = detect_eyes(rgb, boxes[0])
        if eyes is None:
            eye_l = np.array([x + 0.32 * w, y + 0.40 * h])
            eye_r = np.array([x + 0.68 * w, y + 0.40 * h])
            notes.append("eyes not found: placed from the face box")
        else:
            eye_l, eye_r = eyes
            boxes_out["eyes"] = [eye_l.tolist(), eye_r.tolist()]
            notes.append("eyes found")
        eye_avg = (eye_l + eye_r) / 2
        d = eye_r - eye_l
        down = np.array([-d[1], d[0]]) / max(np.hypot(*d), 1e-6)
        mouth = eye_avg + down * 0.42 * h  # Haar face boxes: eyes ~0.40 h, mouth ~0.82 h from the top
        boxes_out["mouth_estimate"] = mouth.tolist()
        quad = ffhq_quad(eye_l, eye_r, mouth)
        # pose: where the eyes sit in the face box (a head turned by yaw moves the eyes by ~0.5 w sin(yaw))
        off_x = (eye_avg[0] - (x + w / 2)) / (0.5 * w)
        off_y = (eye_avg[1] - (y + 0.40 * h)) / (0.5 * h)
        yaw = -math.asin(max(-0.8, min(0.8, off_x)))  # eyes left of centre: camera towards +x
        pitch = math.asin(max(-0.5, min(0.5, off_y)))  # eyes low in the box: camera above (pitch < 0)
        roll = math.degrees(math.atan2(d[1], d[0]))
        notes.append(
            f"camera estimate from the landmarks: yaw {yaw:+.2f}, pitch {pitch:+.2f} (roll {roll:+.1f} deg removed)"
        )
    boxes_out["quad"] = quad.tolist()
    crop = warp_quad(rgb, quad, res)
    if camera is None:
        camera = CameraGuess(yaw, pitch)
    return Prepared(to_tensor(crop), None, crop, camera, subject, notes, boxes_out)


def prepare(
    G: TriPlaneGenerator,
    rgb: np.ndarray,
    alpha: np.ndarray | None = None,
    subject: str | None = None,
    camera: CameraGuess | None = None,
    cancel: CancelToken | None = None,
    box: tuple[int, int, int, int] | None = None,
) -> Prepared:
    """Crop and camera estimate for a picture, by the model's subject kind (or the one given). `box` (x, y, w, h,
    picture pixels): the face box for face and cat models, the region holding the object for object models."""
    kind = subject or subject_kind(G)
    if kind not in SUBJECTS:
        raise FitInputError(f"unknown subject {kind!r} (one of {', '.join(SUBJECTS)})")
    if kind == "object":
        if box is not None:
            x, y, w, h = check_box(box, rgb.shape[1], rgb.shape[0])
            rgb = np.ascontiguousarray(rgb[y : y + h, x : x + w])
            alpha = None if alpha is None else np.ascontiguousarray(alpha[y : y + h, x : x + w])
        return prepare_object(G, rgb, alpha, camera=camera, cancel=cancel)
    if alpha is not None:
        raise FitInputError("the picture has transparent pixels; face models need a photo with its background")
    return prepare_face(G, rgb, kind, camera, box)


def run_fit(
    G: TriPlaneGenerator,
    prepared: Prepared,
    settings: FitSettings | None = None,
    cancel: CancelToken | None = None,
    callback=None,
) -> FitResult:
    """Fit a prepared picture from its camera estimate (see Fitter)."""
    s = settings or FitSettings()
    return Fitter(G, prepared.target(), prepared.camera, s, cancel=cancel).run(callback)
