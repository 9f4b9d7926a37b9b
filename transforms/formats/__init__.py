"""Source formats as data (docs/design.md §1): each export family a YAML file (`formats/` built in, a
user's own folder beside it), loaded and checked (`loader`) into a typed `Format` (`model`); files are
recognised by their head (`recognize`) and read through SQL made from the format (`expressions`), with the
country calling codes of the numbering plan (`calling_codes`)."""

from transforms.formats.loader import FORMATS_DIR_ENV, FormatCatalog, load_format, load_formats
from transforms.formats.model import Format, FormatError

__all__ = ["FORMATS_DIR_ENV", "Format", "FormatCatalog", "FormatError", "load_format", "load_formats"]
