"""How much text each field of a request may carry, and how many items a list in it: one place
for the common bounds, as annotated types the routes' parameters and models use (pydantic
checks them: 422 naming the field, 400 on HMA's routes; the OpenAPI document shows them as
``maxLength`` and ``maxItems``, and tests/api/test_openapi.py checks that every field has
them)."""

from typing import Annotated, Final

from pydantic import Field, StringConstraints

NAME_CHARS: Final = 200  # a name: a list, bank, exchange, service, plug-in, person
WORD_CHARS: Final = 64  # a word of a vocabulary or an id: a signal type, a state, a key's id
TEXT_CHARS: Final = 2000  # free text: a legal basis, a factor, a description
URL_CHARS: Final = 4096
# A hash's text: a video's vPDQ runs to about 80 characters per second of video; the body's
# own limit (max_json_bytes) bounds it too.
HASH_CHARS: Final = 2_000_000
MANY: Final = 1000  # items of a list a request names (lists, labels, jurisdictions, URLs)
# Items of a list in a query string (``?list=a&list=b``): the whole URL stays within the
# 64 KiB HTTP servers take (uvicorn's parser refuses a longer request line with its own 400).
QUERY_MANY: Final = 64
# Hashes in one request: a ceiling far above the service's own limits (max_batch, a victim's
# hashes), which answer with their own message; the body's limit bounds it first.
MANY_HASHES: Final = 100_000

Name = Annotated[str, StringConstraints(max_length=NAME_CHARS)]
Word = Annotated[str, StringConstraints(max_length=WORD_CHARS)]
Text = Annotated[str, StringConstraints(max_length=TEXT_CHARS)]
Url = Annotated[str, StringConstraints(max_length=URL_CHARS)]
HashText = Annotated[str, StringConstraints(max_length=HASH_CHARS)]
Names = Annotated[list[Name], Field(max_length=MANY)]
QueryNames = Annotated[list[Name], Field(max_length=QUERY_MANY)]
Words = Annotated[list[Word], Field(max_length=MANY)]
Texts = Annotated[list[Text], Field(max_length=MANY)]
Urls = Annotated[list[Url], Field(max_length=MANY)]
