"""Where the hunting operator's rows go: XCom or the output file, the manifest and the outlets' events."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_mtp.errors import MTPError, MTPServiceError

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator as _TaskBase
    from airflow.sdk import Context

    from airflow_provider_mtp.api.models import HuntingResult
    from airflow_provider_mtp.hunting_plan import HuntProgress, Piece
    from airflow_provider_mtp.outputs import OutputTarget
else:
    _TaskBase = object

__all__ = ["HuntOutputs"]


class HuntOutputs(_TaskBase):
    """The results of :class:`~airflow_provider_mtp.operators.hunting.RunHuntingQueryOperator`.

    A mixin: at run time it derives from ``object`` only; the type checker sees a
    :class:`~airflow.sdk.BaseOperator`, so ``self.log`` and the other task members check. The
    operator's own arguments it reads are declared below.
    """

    output_path: str | None
    output_format: str | None
    max_xcom_rows: int
    split_on_limit: bool

    @cached_property
    def _target(self) -> OutputTarget | None:
        if not self.output_path:
            return None
        from airflow_provider_mtp.outputs import OutputTarget

        return OutputTarget(str(self.output_path), self.output_format)

    def _check_schema(
        self, progress: HuntProgress, schema: list[dict[str, str]], target: OutputTarget | None
    ) -> None:
        if progress.schema is None:
            progress.schema = schema
        elif schema != progress.schema and target is not None:
            raise MTPServiceError(
                "The pieces of the split window came back with different columns "
                f"({progress.schema} then {schema}); they cannot go in one file. Project the columns "
                "explicitly (| project ...) so every piece has the same schema."
            )

    def _collect_rows(self, progress: HuntProgress, result: HuntingResult) -> list[dict[str, Any]]:
        """The piece's rows, holding at most ``max_xcom_rows + 1`` rows in all."""
        room = self.max_xcom_rows - len(progress.rows or [])
        rows: list[dict[str, Any]] = []
        for row in result.rows:
            rows.append(row)
            if len(rows) > room:
                result.close()
                raise MTPError(
                    f"The hunt returned more than max_xcom_rows={self.max_xcom_rows} rows, too many for "
                    "XCom. Set output_path (a local path or an object storage URI such as "
                    "s3://bucket/hunts/{{ ds }}.parquet) to write them to a file, or narrow the query."
                )
        return rows

    def _finish(self, context: Context, progress: HuntProgress, target: OutputTarget | None) -> Any:
        total = progress.total_rows
        pieces = len(progress.done)
        self.log.info("Hunt done: %s rows in %d piece%s", f"{total:,}", pieces, "" if pieces == 1 else "s")
        if target is None:
            self._record_outlets(context, {"rows": total, "query_sha256": progress.query_sha256})
            return progress.rows or []
        from airflow.sdk import ObjectStoragePath

        parts = [ObjectStoragePath(piece.part) for piece in progress.done if piece.part]
        target.publish(parts, progress.schema or [], progress.token)
        target.clean(progress.token)
        manifest: dict[str, Any] = {
            "path": target.uri,
            "rows": total,
            "schema": progress.schema or [],
            "window": progress.window.as_dict() if progress.window else None,
            "query_sha256": progress.query_sha256,
        }
        if self.split_on_limit:
            manifest["pieces"] = [piece.manifest_entry() for piece in progress.done]
        self.log.info("Wrote %s rows to %s", f"{total:,}", target.uri)
        self._record_outlets(
            context,
            {
                "path": target.uri,
                "rows": total,
                "window": manifest["window"],
                "query_sha256": manifest["query_sha256"],
            },
        )
        return manifest

    def _record_outlets(self, context: Context, extra: dict[str, Any]) -> None:
        """Put the result's summary on each outlet asset's event."""
        from airflow.sdk import Asset

        events = context.get("outlet_events")
        if events is None:
            return
        for outlet in self.outlets or ():
            if isinstance(outlet, Asset):
                events[outlet].extra.update(extra)

    def _progress_logger(self, piece: Piece) -> Callable[[int], None]:
        """A callback logging every 25,000 rows written, for long pieces."""

        def on_row(count: int) -> None:
            if count % 25_000 == 0:
                self.log.info(
                    "... %s rows written%s",
                    f"{count:,}",
                    f" for {piece.window.label()}" if piece.window else "",
                )

        return on_row

    def _remove_part(self, part: Any) -> None:
        try:
            part.unlink()
        except OSError as exc:
            self.log.debug("could not remove %s: %s", part, exc)
