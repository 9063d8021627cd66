"""Demo data shared by `seed_demo` and `simulate_streams` (deterministic, so both agree)."""

import hashlib
import hmac
import io

from django.conf import settings

DEMO_ROOMS = [
    # slug, name, merchant, host
    ("beauty-01", "美妆专场 · 小鹿", "鹿鸣美妆旗舰店", "小鹿"),
    ("snacks-02", "零食节 · 阿杰", "好味零食铺", "阿杰"),
    ("fashion-03", "女装上新 · 琳琳", "琳琅服饰", "琳琳"),
    ("digital-04", "数码好物 · 老王", "王牌数码", "老王"),
    ("tea-05", "春茶品鉴 · 茶姐", "云雾茶庄", "茶姐"),
    ("home-06", "家居百货 · 大壮", "壮家居", "大壮"),
]

DEMO_USERS = [
    # username, role, password
    ("operator", "ops", "operator-demo-2026"),
    ("floor", "floor_control", "floor-demo-2026"),
    ("tech", "tech_support", "tech-demo-2026"),
    ("manager", "manager", "manager-demo-2026"),
]


def demo_publish_token(room_slug, line_role):
    """Deterministic per-installation publish token for the demo lines."""
    msg = f"demo-publish:{room_slug}:{line_role}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), msg, hashlib.sha256).hexdigest()[:32]


def render_slate_png(width=640, height=360, hue=0):
    """A plain holding-slate picture (diagonal gradient with a band), as PNG bytes."""
    import av
    import numpy as np

    y, x = np.mgrid[0:height, 0:width]
    base = ((x + y) * 255 // (width + height)).astype(np.uint8)
    img = np.zeros((height, width, 3), dtype=np.uint8)
    img[..., 0] = 90 + base // 3
    img[..., 1] = 40 + (hue * 37) % 60
    img[..., 2] = 140 + base // 3
    band = slice(height // 2 - height // 10, height // 2 + height // 10)
    img[band, width // 8: width - width // 8] = (235, 235, 245)
    frame = av.VideoFrame.from_ndarray(img, format="rgb24")
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "rgb24"
    out = io.BytesIO()
    for packet in codec.encode(frame):
        out.write(bytes(packet))
    for packet in codec.encode(None):
        out.write(bytes(packet))
    return out.getvalue()
