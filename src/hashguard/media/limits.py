"""Resource limits applied to untrusted media before anything large is allocated."""

from dataclasses import dataclass

from hashguard.media.errors import LimitExceeded

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Hard limits for one piece of media. Defaults suit an upload-checking service."""

    max_image_bytes: int = 256 * MIB
    max_video_bytes: int = 8 * 1024 * MIB
    max_pixels: int = 64_000_000  # per image or video frame
    max_frames: int = 10_000  # frames (pages) in an animated or multi-page image
    max_jpeg_scans: int = 500  # progressive JPEG scans; thousands make libjpeg crawl
    max_video_frames: int = 1_000_000
    max_video_seconds: float = 6 * 3600

    def __post_init__(self) -> None:
        for name in self.__slots__:
            if getattr(self, name) <= 0:
                raise ValueError(f"limit {name} must be positive")

    def check_image_bytes(self, size: int) -> None:
        if size > self.max_image_bytes:
            raise LimitExceeded("image size", size, self.max_image_bytes, "bytes")

    def check_video_bytes(self, size: int) -> None:
        if size > self.max_video_bytes:
            raise LimitExceeded("video size", size, self.max_video_bytes, "bytes")

    def check_pixels(self, width: int, height: int, what: str = "declared") -> None:
        if width * height > self.max_pixels:
            raise LimitExceeded(
                f"{what} {width}x{height} pixels =", width * height, self.max_pixels
            )

    def check_frames(self, frames: int) -> None:
        if frames > self.max_frames:
            raise LimitExceeded("frame count", frames, self.max_frames)

    def check_video_frames(self, frames: int) -> None:
        if frames > self.max_video_frames:
            raise LimitExceeded("video frame count", frames, self.max_video_frames)

    def check_video_seconds(self, seconds: float) -> None:
        if seconds > self.max_video_seconds:
            raise LimitExceeded("video duration", seconds, self.max_video_seconds, "s")


DEFAULT_LIMITS = Limits()
