"""The files connector's configuration: where the files are and how to read them.

`directory` holds the files to import; the mapping (`mapping_file`, a YAML file, or
`mapping` inline) declares the streams (see `mapping`). Set fields as
`MAILWRIGHT_CONNECTOR_FILES_<FIELD>` or under `connectors: {files: …}`. The mapping is read
and checked when the connector opens: a problem names its place
(`mapping.streams.orders.event: required for a track stream`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, model_validator

from mailwright.connectors import ConnectorConfig, field_error
from mailwright_files.mapping import FilesMapping

NAME = "files"
MAX_MAPPING_BYTES = 1024 * 1024


class FilesConfig(ConnectorConfig):
    """Where the import files are, how they map to events, and batch sizes."""

    directory: Path | None = None
    """The directory the streams' file patterns are relative to."""
    mapping_file: Path | None = None
    """A YAML file declaring the streams (read at open)."""
    mapping: FilesMapping | None = None
    """The same declaration inline (JSON in the environment)."""
    batch_size: int = Field(default=1000, ge=1, le=10_000)
    """Records per batch handed to ingest (and per saved cursor)."""

    @model_validator(mode="before")
    @classmethod
    def _read_mapping(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("mapping_file") is None:
            return data
        if data.get("mapping") is not None:
            raise field_error(FilesConfig, "mapping_file", "give mapping_file or mapping, not both")
        path = Path(str(data["mapping_file"]))
        try:
            if path.stat().st_size > MAX_MAPPING_BYTES:
                raise field_error(FilesConfig, "mapping_file", "larger than 1 MiB")
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as error:
            why = f"cannot be read ({error.strerror})"
            raise field_error(FilesConfig, "mapping_file", why) from None
        except yaml.YAMLError as error:
            problem = getattr(error, "problem_mark", None)
            where = f" at line {problem.line + 1}" if problem is not None else ""
            why = f"not YAML ({type(error).__name__}{where})"
            raise field_error(FilesConfig, "mapping_file", why) from None
        return {**data, "mapping": loaded}

    @model_validator(mode="after")
    def _directory(self) -> FilesConfig:
        if self.directory is not None and not self.directory.is_dir():
            raise field_error(FilesConfig, "directory", f"{self.directory} is not a directory")
        return self
