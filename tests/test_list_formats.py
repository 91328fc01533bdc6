"""List file formats: what they accept, and errors that name the file and line."""

import numpy as np
import pytest

from hashguard.lists.formats import ListFormatError
from hashguard.lists.formats.plain import read_pdq


def test_plain_list_reads_hashes_with_their_line_numbers(tmp_path) -> None:
    path = tmp_path / "list.txt"
    first, second = "0f" * 32, "A1" * 32
    path.write_bytes(f"\ufeff# header\n{first}\n\n   {second}\t\r\n".encode())
    lines, hashes = read_pdq(path)
    assert lines.tolist() == [2, 4]
    assert hashes.dtype == np.uint8 and hashes.shape == (2, 32)
    assert hashes[0].tobytes().hex() == first and hashes[1].tobytes().hex() == second.lower()


def test_empty_plain_list_is_an_empty_list(tmp_path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("")
    lines, hashes = read_pdq(path)
    assert lines.shape == (0,) and hashes.shape == (0, 32)


@pytest.mark.parametrize(
    ("content", "line", "shown"),
    [
        (b"0f" * 32 + b"\n" + b"0f" * 31 + b"\n", 2, "'" + "0f" * 20 + "...'"),
        (b"0g" * 32 + b"\n", 1, "'" + "0g" * 20 + "...'"),
        (b"\n\n\xff\xfe not hex\n", 3, r"'\xff\xfe not hex'"),
        (b"0f" * 32 + b" label\n", 1, "'" + "0f" * 20 + "...'"),
    ],
)
def test_malformed_lines_are_named(tmp_path, content, line, shown) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(ListFormatError) as error:
        read_pdq(path)
    assert str(error.value) == f"{path}:{line}: expected a PDQ hash (64 hex digits), got {shown}"
    assert error.value.line == line
