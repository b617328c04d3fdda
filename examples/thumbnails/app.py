"""Thumbnails: an image uploaded under ``uploads/`` in the ``images`` bucket triggers a function
that makes thumbnails of several sizes with Pillow and writes them under ``thumbs/<size>/``,
with the original's content type and metadata. A corrupt upload fails, is retried, and lands
in the dead-letter store with its error. See README.md beside it for the commands.

    PUT uploads/cat.png ──> squall.object.created ──> make-thumbnails ──> thumbs/small/cat.png
                                                                          thumbs/medium/cat.png
                                                                          thumbs/large/cat.png
    GET /thumbs/{size}/{name}       the thumbnail's bytes
    GET /thumbs/{size}/{name}/url   a presigned URL for it

The trigger's prefix filter is what keeps the thumbnails written under ``thumbs/`` from
triggering the function again.
"""

import io

from PIL import Image, UnidentifiedImageError

import squall

app = squall.App("thumbnails")
app.bucket("images", max_object_bytes=20 * 1024 * 1024)

UPLOADS, THUMBS = "uploads/", "thumbs/"
SIZES = {"small": (64, 64), "medium": (256, 256), "large": (512, 512)}  # bounding boxes


class CorruptImage(Exception):
    """An upload Pillow cannot decode; retried like any failure, then dead-lettered."""


def thumbnail_key(size: str, key: str) -> str:
    return f"{THUMBS}{size}/{key.removeprefix(UPLOADS)}"


def open_image(key: str, body: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(body))
        image.load()  # decodes the pixels: a truncated file fails here, not at open
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise CorruptImage(f"{key} is not an image Pillow can read: {exc}") from None
    return image


def refuse(status: int, field: str, message: str) -> squall.Response:
    return squall.Response({"error": {"field": field, "message": message}}, status=status)


@app.on_object("images", events=["created"], prefix=UPLOADS, name="make-thumbnails",
               permissions=["bucket:images"], memory_mb=256, retries=2)
def make_thumbnails(event, ctx):
    """Writes one thumbnail per size, keeping the original's format, type and metadata."""
    key = event["data"]["key"]
    images = ctx.buckets["images"]
    original = images.get(key)
    image = open_image(key, original.body)
    made = {}
    for size, box in SIZES.items():
        thumb = image.copy()
        thumb.thumbnail(box)
        out = io.BytesIO()
        thumb.save(out, format=image.format)
        metadata = {**original.metadata, "source": key,
                    "width": str(thumb.width), "height": str(thumb.height)}
        stored = images.put(thumbnail_key(size, key), out.getvalue(),
                            content_type=Image.MIME.get(image.format, original.content_type),
                            metadata=metadata)
        made[size] = {"key": stored.key, "width": thumb.width, "height": thumb.height}
    ctx.logger.info("%s: %d thumbnails", key, len(made))
    return made


def find_thumbnail(request, ctx):
    """The thumbnail a route names, or the 404 to answer."""
    size, name = request.path_params["size"], request.path_params["name"]
    if size not in SIZES:
        return None, refuse(404, "size", f"size must be one of {', '.join(SIZES)}")
    key = f"{THUMBS}{size}/{name}"
    try:
        return ctx.buckets["images"].head(key), None
    except squall.NotFound:
        return None, refuse(404, "name", f"no thumbnail {key!r} (yet)")


@app.http("GET /thumbs/{size}/{name}", permissions=["bucket.read:images"])
def get_thumbnail(request, ctx):
    """The thumbnail's bytes, with its content type."""
    stored, refused = find_thumbnail(request, ctx)
    if refused is not None:
        return refused
    body = ctx.buckets["images"].get(stored.key).body
    return squall.Response(body, headers={"content-type": stored.content_type})


@app.http("GET /thumbs/{size}/{name}/url", permissions=["bucket.read:images"])
def thumbnail_url(request, ctx):
    """A presigned URL anyone may GET the thumbnail with for ten minutes."""
    stored, refused = find_thumbnail(request, ctx)
    if refused is not None:
        return refused
    return {"key": stored.key, "url": ctx.buckets["images"].presign(stored.key, expires_s=600)}
