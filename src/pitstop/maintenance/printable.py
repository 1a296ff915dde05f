"""A printed copy of any procedure or runbook: for the clipboard on the plant floor, and for the
hour when pitstop itself is down (a breach, damaged data) and the runbook must be read on paper.

`render` makes one self-contained HTML page (print CSS; no scripts, images, web fonts or other
URLs, so it prints the same offline): title, version (number and sha256 prefix), schedule, the
on-call contact list, and every step numbered with its kind, what to do, the expected value or
limits, its time limit, and boxes and lines to fill in by hand. `pdf` turns that page into PDF
when the optional `weasyprint` package is installed, and says so plainly when it is not.

The contact list comes from `[oncall]`: each contact with the roles the configuration gives
them (on call now in a schedule, in a rotation, named by an escalation policy), phone and email.
Runs of procedures that show contacts (`contacts = true`, or any runbook unless `contacts =
false`) carry the same list.
"""

from __future__ import annotations

import importlib
import json
import re
import shlex
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from pitstop.config.oncall import OncallSettings
from pitstop.errors import InvalidInput
from pitstop.maintenance.cron import Cron
from pitstop.maintenance.procedures import (
    ManualStep,
    Procedure,
    ProcedureFile,
    Step,
)
from pitstop.oncall.schedule import Schedule

Format = Literal["html", "pdf"]
FORMATS: tuple[Format, ...] = ("html", "pdf")
NO_CONTACTS = "no contacts configured — add [oncall.contacts] to pitstop.toml"
TEMPLATE = "procedure_print.html"
_HASH_SHOWN = 12  # hex digits of the sha256 on the page: enough to tell versions apart by eye
_SECRET_PARAM = re.compile(r"pass|secret|token|routing_key|api_key", re.IGNORECASE)
_URL_USERINFO = re.compile(r"(//)[^/@\s]+@")
_CODE = re.compile(r"`([^`]+)`")

_pages = Environment(
    loader=PackageLoader("pitstop", "web/templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _code(text: str) -> Markup:
    """Text escaped, with `backticked` commands set in monospace, as the procedure files write them."""
    return Markup(_CODE.sub(r"<code>\1</code>", str(escape(text))))


_pages.filters["code"] = _code


@dataclass(frozen=True, slots=True)
class Contact:
    key: str
    name: str
    roles: tuple[str, ...]
    phone: str
    email: str

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "roles": list(self.roles)}


@dataclass(frozen=True, slots=True)
class Version:
    """The version a printed copy names: the number runs record for this content, and its sha256.
    `recorded` False: no run used this content yet; its first run records `number`."""

    number: int
    content_hash: str
    recorded: bool

    @property
    def label(self) -> str:
        return f"v{self.number} · sha256 {self.content_hash[:_HASH_SHOWN]}"


def version_of(pf: ProcedureFile, versions: list[dict[str, Any]]) -> Version:
    """The version of this file among the recorded ones (`ProcedureRunner.versions`), read only."""
    for v in versions:
        if v["content_hash"] == pf.content_hash:
            return Version(int(v["version"]), pf.content_hash, True)
    latest = max((int(v["version"]) for v in versions), default=0)
    return Version(latest + 1, pf.content_hash, False)


def shows_contacts(proc: Procedure) -> bool:
    """Whether runs of this procedure show the contact list: `contacts`, by default for runbooks."""
    return proc.runbook if proc.contacts is None else proc.contacts


def contact_list(oncall: OncallSettings, at: datetime) -> list[Contact]:
    """Every configured contact with their roles at `at`: who is on call first, then by key."""
    roles: dict[str, list[str]] = {key: [] for key in oncall.contacts}
    rank: dict[str, int] = dict.fromkeys(oncall.contacts, 2)
    for name, cfg in oncall.schedules.items():
        schedule = Schedule(name, cfg)
        shift = schedule.shifts(at, at + timedelta(days=400))[0]
        secondary = schedule.secondary_at(at)
        roles[shift.contact].append(f"on call now ({name}, primary) until {_when(shift.end)}")
        rank[shift.contact] = 0
        if secondary is not None and secondary != shift.contact:
            roles[secondary].append(f"second on call now ({name})")
            rank[secondary] = min(rank[secondary], 1)
        for key in dict.fromkeys(cfg.rotation):
            if key not in (shift.contact, secondary):
                roles[key].append(f"{name} rotation")
    emergency = oncall.emergency_policy or next(iter(oncall.policies), None)
    for name, policy in oncall.policies.items():
        which = f"{name} escalation" + (" (emergencies)" if name == emergency else "")
        for i, step in enumerate(policy.steps, start=1):
            if step.notify.startswith("contact:"):
                roles[step.notify[8:]].append(f"{which}, step {i}")
    return sorted(
        (
            Contact(key, c.name, tuple(roles[key]) or ("contact",), c.phone or "", c.email or "")
            for key, c in oncall.contacts.items()
        ),
        key=lambda c: (rank[c.key], c.key),
    )


def run_contacts(proc: Procedure, oncall: OncallSettings, at: datetime) -> dict[str, Any]:
    """What a run's view adds: the contact list (empty and a note saying where to add it when
    there is none); nothing for procedures that do not show contacts."""
    if not shows_contacts(proc):
        return {}
    found = contact_list(oncall, at)
    return {"contacts": [c.as_dict() for c in found], "contacts_note": "" if found else NO_CONTACTS}


def render(pf: ProcedureFile, *, version: Version, oncall: OncallSettings, now: datetime) -> str:
    """The printable HTML page of a procedure file."""
    proc = pf.procedure
    return _pages.get_template(TEMPLATE).render(
        proc=proc,
        name=proc.name,
        origin="shipped with pitstop" if pf.origin == "package" else "the site's own file",
        version=version,
        schedule=schedule_text(proc, now),
        generated=_when(now),
        contacts=contact_list(oncall, now),
        no_contacts=NO_CONTACTS,
        timed=any(s.within for s in proc.steps),
        automated=any(not isinstance(s, ManualStep) for s in proc.steps),
        steps=[_step(i, s) for i, s in enumerate(proc.steps, start=1)],
    )


def schedule_text(proc: Procedure, now: datetime) -> str:
    spec = proc.schedule
    if spec is None:
        if proc.runbook:
            declare = f"pitstop emergency declare KEY TITLE --runbook {proc.name}"
            return f"none: started when an emergency is declared (`{declare}`)"
        return f"none: run when needed (`pitstop procedures run {proc.name}`)"
    if spec.cron is not None:
        when = f"cron `{spec.cron}` (UTC), {spec.mode}"
        try:
            when += f"; next {_when(Cron.parse(spec.cron).next_after(now))}"
        except InvalidInput as exc:
            when += f" ({exc})"
    else:
        when = f"every {spec.every}, {spec.mode}" + (" (from the last completion)" if spec.mode == "floating" else "")
    parts = [when, f"work order {spec.lead} ahead"]
    if spec.grace:
        parts.append(f"grace {spec.grace}")
    if spec.window:
        parts.append(f"in window {spec.window}")
    return "; ".join(parts) + f" — suggested; a site enables it with `pitstop procedures enable {proc.name}`"


def output_format(fmt: str | None, output: Path | None) -> Format:
    """html or pdf: as asked, else from the output file's suffix, else html."""
    suffix = output.suffix.lower().lstrip(".") if output is not None else ""
    chosen = (fmt or (suffix if suffix in FORMATS else "html")).lower()
    if chosen not in FORMATS:
        raise InvalidInput(f"format {chosen[:20]!r} is not html or pdf")
    if suffix in FORMATS and suffix != chosen:
        raise InvalidInput(f"--format {chosen} does not match the output file's .{suffix}")
    return "pdf" if chosen == "pdf" else "html"


def pdf(page: str) -> bytes:
    """The page as PDF, by weasyprint; InvalidInput saying what to install when it is missing.
    Nothing is fetched: the page names no URL, and any URL would be refused."""
    try:
        weasyprint = importlib.import_module("weasyprint")
    except (ImportError, OSError) as exc:  # OSError: installed, but its Pango libraries are not
        raise InvalidInput(
            "PDF needs the optional weasyprint package (pip install weasyprint, with the Pango "
            f"libraries it loads), which is not usable here ({type(exc).__name__}); write HTML and print it "
            "from a browser instead"
        ) from None
    data: bytes = weasyprint.HTML(string=page, url_fetcher=_refusing_fetcher(weasyprint)).write_pdf()
    return data


def _refusing_fetcher(weasyprint: Any) -> Any:
    """A URL fetcher that fetches nothing: a URLFetcher whose fetch refuses (weasyprint 66 and
    later take fetcher objects), or a plain function for the older ones."""
    base = getattr(weasyprint, "URLFetcher", None)
    if base is None:
        return _no_fetch

    class Refusing(base):  # type: ignore[misc, valid-type]
        def fetch(self, url: str, headers: Any = None) -> Any:
            return _no_fetch(url)

    return Refusing()


def write(page: str, path: Path, fmt: Format) -> Path:
    """Write the page as `fmt` to `path` (its folder made when missing)."""
    data = pdf(page) if fmt == "pdf" else page.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _no_fetch(url: str, *args: Any, **kwargs: Any) -> Any:
    raise ValueError(f"a printed procedure fetches nothing ({url[:80]})")


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _params(params: dict[str, Any]) -> str:
    """Parameters as JSON, secrets masked: a printed copy lies on desks."""
    shown = {
        k: "***" if _SECRET_PARAM.search(k) else (_URL_USERINFO.sub(r"\1***@", v) if isinstance(v, str) else v)
        for k, v in params.items()
    }
    return json.dumps(shown, sort_keys=True, default=str)


def limits_text(step: ManualStep) -> str:
    if step.min is not None and step.max is not None:
        return f"{step.min:g} to {step.max:g} {step.unit}".strip()
    if step.min is not None:
        return f"at least {step.min:g} {step.unit}".strip()
    if step.max is not None:
        return f"at most {step.max:g} {step.unit}".strip()
    return ""


def _step(number: int, step: Step) -> dict[str, Any]:
    """What the template shows of one step: kind label, what to do, what is expected, what to fill in.
    Automated kinds are read by their fields, so a kind added later still prints (by its name)."""
    row: dict[str, Any] = {
        "number": number,
        "id": step.id,
        "kind": step.kind,
        "title": step.title,
        "within": step.within or "",
        "manual": isinstance(step, ManualStep),
        "label": f"automated {step.kind}",
        "does": "",
        "detail": "",
        "expected": "passes",
        "value": False,
        "unit": "",
        "attachment": False,
        "notes": 2,
    }
    if isinstance(step, ManualStep):
        limits = limits_text(step)
        row.update(
            label="by hand",
            does=step.instruction,
            expected=limits or (step.expected or "pass or fail, as judged"),
            value=bool(limits) or (step.expected or "").strip().lower() not in ("", "yes"),
            unit=step.unit,
            attachment=step.attachment,
            notes=3,
        )
        return row
    fields = step.__dict__
    target = fields.get("target") or "the run's asset (or the system)"
    if step.kind == "check":
        row.update(does=f"pitstop runs the health check `{fields['check']}` on `{target}`", expected="healthy")
    elif step.kind == "action":
        row.update(does=f"pitstop runs the self-healing action `{fields['action']}` on `{target}`, through its guards")
    elif step.kind == "pitstop":
        row.update(label="automated pitstop operation", does=f"pitstop runs `pitstop {fields['operation']}` in-process")
    elif step.kind == "update":
        what = fields.get("requirement") or fields.get("package") or shlex.join(fields.get("command") or [])
        copied = ", ".join(fields.get("backup") or []) or "nothing"
        row.update(
            does=f"pitstop updates by {fields.get('method')}: `{what}`, after copying {copied}",
            detail="rolled back when the update or its smoke test fails",
            expected="the smoke test passes",
        )
    elif step.kind == "reboot":
        row.update(
            does=f"pitstop reboots the host: `{shlex.join(fields['command'])}`",
            expected=f"the host is back within {fields.get('back_within')}",
        )
    elif isinstance(fields.get("command"), list):
        row.update(does=f"pitstop runs `{shlex.join(fields['command'])}`", expected="exit 0")
    details = [
        f"{k} `{_params(fields[k])}`" for k in ("params", "args") if isinstance(fields.get(k), dict) and fields[k]
    ]
    if isinstance(fields.get("timeout_s"), int | float) and step.kind == "command":
        details.append(f"timeout {fields['timeout_s']:g} s")
    if fields.get("every"):
        details.append(f"at most every {fields['every']}")
    if fields.get("disruptive") or step.kind in ("update", "reboot"):
        details.append("only inside a maintenance window")
    row["detail"] = "; ".join(d for d in [row["detail"], *details] if d)
    return row
