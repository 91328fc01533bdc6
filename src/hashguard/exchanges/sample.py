"""HMA's static sample exchange: a few fixed benign hashes, for trying hashguard's exchange
machinery without an account anywhere. The hashes are of hashguard's own generated scenes
(``hashguard.media.synthetic.scene(seed)`` encoded as PNG: PDQ of the picture, MD5 of the
file), computed once and written here, and the example signals HMA's sample exchange serves.
No network, no credentials."""

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Final

from hashguard.exchanges.api import ExchangeHttp, FeedbackItem, Page, Schema
from hashguard.exchanges.fields import check_fields
from hashguard.exchanges.registry import register
from hashguard.lists.model import Category, Provenance, Source
from hashguard.lists.records import Record, Submission

# (seed of the scene, PDQ, MD5 of its PNG)
SCENES: Final = (
    (1, "08e11c63387e74be6b1cf7886b34f078e378c681ef77d4a988f618c6950e6a94",
     "9b4c5a33785197404f3d24ae5d09357f"),
    (2, "e27b96c72f1c4d30b8d8f07ec664099864f898e4b33de643a3c7659a1c32739c",
     "df5cddc53811706b80e397c17f63d391"),
    (3, "2e9b936444932b6e2ecad835369de7783d0ac2f95a87d167054b38b39a31259b",
     "315b40561d4eb27026c63aa7f4c7c296"),
    (4, "58a32d557baab30eb30c9b64cd32ce38a65966e9b8e672ecb158ca081994cecf",
     "8bb288cfbd85f130e3b6cd3d2041e94a"),
)  # fmt: skip
# pytx's example signals (``PdqSignal.get_examples()``, ``VideoMD5Signal.get_examples()``), which
# HMA's sample exchange serves, so HMA's clients and tests find them here too. Benign:
# ThreatExchange's test photos (a bridge, its variants, misc images), GitHub's logos.
HMA_EXAMPLES: Final = (
    ("pdq", "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"),
    ("pdq", "f8f8f0cee0f4a84f06370a2a038f63f0b36e26d596621e1d33e6b39c4e9c9b22"),
    ("pdq", "f8f8f0cee0f4a84f0637022a038f67f0b36e26d596621e1d33e6b39c4e9c9b22"),
    ("pdq", "f8f8f0cee0f4a84f06370a2a068f67f0b36e26d596621e1d33e6339c4e9c9b22"),
    ("pdq", "f8f8f0cee0f4a84f06370a22038f67f0b36e2ed596221e1d33e6b39c4e9c9b22"),
    ("pdq", "f8f8f0cee0f4a84f0e370a22038f67f0b36e2ed596221e1d33e6b39c4a9c9b22"),
    ("pdq", "d8f8f0cec0f4a84f8e370a22038f67f0b36a2ed597231e1d72e6b39c4a9c9b22"),
    ("pdq", "f8f8f0cee0f4a84f06370a22038f67f0b36e2ed596621e1d33e6339c4e9c9b22"),
    ("pdq", "d0f8f1ccc0f4a84d0a370a3a228f67f0b36e2ed5b6623e1d33e6339c4e9c9b22"),
    ("pdq", "d8f8f1eec0f4a84f0e37022a078f63f0b36e2ed596621e1d33e6239c4e9c9b22"),
    ("pdq", "d8f8f0cec4f4a84f0637022a078f67f0b36e2ee5b6621e1d33e6239c4e9c9b22"),
    ("pdq", "d8f8f0cec0f4a84f0637022a278f67f0b36e2ed596621e1d33e6339c4e9c9b22"),
    ("pdq", "e64cc9d91c623882f8d1f1d9a398e78c9f199b3bd83924f2b7e11e0bf861b064"),
    ("pdq", "6227401f601ff4ccafcc9fad4b0d95d371a2eb7265a3285234d228ca94deeb2d"),
    ("pdq", "c186f9619659658c4b6916daf934496985f4259c72c39676ab9edb631c3c349c"),
    ("pdq", "62c9789627838f69f23cf98c29e37836d61c87c31c59587c4b49a783f496725c"),
    ("md5", "cab08b36195edb1a1231d2d09fa450e0"),
)  # pytx's second MD5 example, the empty file's, is left out: every empty file would match it
VERSION: Final = 1  # the checkpoint once the sample is fetched
ORGANISATION: Final = "hashguard sample"


@register
class SampleExchange:
    name: ClassVar[str] = "sample"
    title: ClassVar[str] = "Sample exchange (fixed benign hashes)"
    category: ClassVar[Category] = Category.TEST
    config_schema: ClassVar[Schema] = Schema()
    credentials_schema: ClassVar[Schema | None] = None
    default_base_url: ClassVar[str] = ""
    supports_feedback: ClassVar[bool] = False
    local: ClassVar[bool] = True  # reaches no host: needs no base URL

    @classmethod
    def check_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        return check_fields(cls.config_schema, config)

    @classmethod
    def check_credentials(cls, credentials: Mapping[str, Any]) -> dict[str, Any]:
        return check_fields(Schema(), credentials, "credential")

    def __init__(
        self, config: Mapping[str, Any], credentials: Mapping[str, Any] | None, http: ExchangeHttp
    ) -> None:
        self.config = config

    def fetch(self, checkpoint: Mapping[str, Any] | None) -> Iterator[Page]:
        """Every sample hash once; nothing after."""
        if checkpoint is not None and checkpoint.get("version") == VERSION:
            return
        held = [(f"scene-{seed}", signal, value) for seed, pdq, md5 in SCENES
                for signal, value in (("pdq", pdq), ("md5", md5))]  # fmt: skip
        held += [(f"pytx-{n}", signal, value) for n, (signal, value) in enumerate(HMA_EXAMPLES, 1)]
        records: list[Record] = [
            Submission(signal, value, frozenset({"sample"}),
                       Provenance(ORGANISATION, "", (Source(ORGANISATION, "", reference),)))
            for reference, signal, value in held
        ]  # fmt: skip
        yield Page(records, checkpoint={"version": VERSION})

    def send_feedback(self, item: FeedbackItem) -> None:
        raise NotImplementedError("the sample exchange takes no feedback")
