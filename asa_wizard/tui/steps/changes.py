"""The steps that change something (ASA, SPNs, client auth, SEG, IIS auth; the rollout builds on this).

Each shows the step's choices, then a preview of exactly what will change (object, attribute, old -> new,
where), the equivalent manual commands (selectable, and `c` copies them), and Apply, which asks first and
never runs in dry-run mode. After a change the step's checks run again by themselves.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import (Button, Checkbox, DataTable, Input, Label, Select, SelectionList, Static,
                             TextArea)

from ...core.changes import Change
from ...core.model import ENC_AES_AND_RC4, ENC_AES_ONLY, AccountKind, normalize_account
from ...core.text import terminal_safe
from .base import StepPane, cell
from .discovery import fill_findings
from ..widgets import TickBox


from ..words import changed_flags, in_the_wizard, show_value  # noqa: F401  (show_value: re-exported)


def where(change: Change) -> str:
    return "Active Directory" if str(change.system) == "directory" else change.target


def change_lines(changes: list[Change]) -> list[str]:
    """The confirmation text: every change, old -> new, in the order it will be applied."""
    lines = []
    for c in changes:
        line = in_the_wizard(c.summary)
        if c.attribute:
            line += f"  [{c.attribute}: {changed_flags(c.old, c.new, c.attribute).replace(' → ', ' -> ')}]"
        if c.warning:
            line += f"  Warning: {c.warning}"
        lines.append(line)
    return lines


class ChangePane(StepPane):
    SUPPORTS = frozenset({"run", "apply", "copy"})

    def __init__(self, session: Any, **kw: Any) -> None:
        super().__init__(session, **kw)
        self.changes: list[Change] = []
        self.blockers: list[Any] = []

    @property
    def work_group(self) -> str:
        return "changes"  # one change run at a time: a second would race the first on the same objects

    def compose_controls(self) -> ComposeResult:
        yield from self.compose_options()
        yield Static("", id=f"dry-note-{self.STEP_ID}", classes="dry-run-note", markup=False)
        yield Label("Preview: exactly what will change", classes="section-title")
        yield Static("", id=f"blockers-{self.STEP_ID}", markup=False, classes="hint")
        yield DataTable(id=f"preview-{self.STEP_ID}", cursor_type="row", zebra_stripes=True)
        yield Label("The same by hand (select to copy, or press c)", classes="section-title")
        yield TextArea("", read_only=True, soft_wrap=True, show_line_numbers=False, id=f"commands-{self.STEP_ID}",
                       classes="commands")
        with Horizontal(classes="buttons"):
            yield Button("Apply… (a)", id=f"apply-{self.STEP_ID}", variant="warning")
            yield Button("Copy commands (c)", id=f"copy-{self.STEP_ID}")
            yield Button("Refresh preview (r)", id=f"refresh-{self.STEP_ID}")
        yield from self.compose_progress()
        yield Label("Checks that prove this step (enter: go to the step that fixes it)", classes="section-title")
        yield DataTable(id=f"checks-{self.STEP_ID}", cursor_type="row", zebra_stripes=True)

    def compose_options(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.query_one(f"#preview-{self.STEP_ID}", DataTable).add_columns("Change", "Attribute", "Old → New",
                                                                           "Where")
        self.query_one(f"#checks-{self.STEP_ID}", DataTable).add_columns("Status", "Check", "Subject",
                                                                          "Evidence / fix")
        self.refresh_from_session()

    # --- state -> screen ---------------------------------------------------------------------------------
    def refresh_from_session(self) -> None:
        session = self.session
        note = self.query_one(f"#dry-note-{self.STEP_ID}", Static)
        note.update("DRY-RUN is on: Apply shows what would happen and changes nothing." if session.dry_run else "")
        note.display = session.dry_run
        self.sync_options()
        plan = session.plan()
        self.changes = [c for c in plan.changes if c.step == self.STEP_ID] if plan else []
        # Apply refuses the whole plan while one is not met (the executor too): shown before Apply is pressed
        self.blockers = list(plan.blockers) if plan else []
        self._show_preview()
        self._show_checks()

    def sync_options(self) -> None:
        """Bring the step's own controls up to date with the environment (conflicts, servers)."""

    def _show_preview(self) -> None:
        table = self.query_one(f"#preview-{self.STEP_ID}", DataTable)
        table.clear()
        for c in self.changes:
            old_new = changed_flags(c.old, c.new, c.attribute) if c.attribute else ""
            table.add_row(cell(in_the_wizard(c.summary)), cell(c.attribute or ""), cell(old_new), cell(where(c)),
                          key=c.id)
        blockers = self.query_one(f"#blockers-{self.STEP_ID}", Static)
        lines = [in_the_wizard(f"Blocked: {p.text}" + (f" Fix: {p.fix}" if p.fix else "")) for p in self.blockers]
        if not self.changes and not self.blockers:
            lines.append("Nothing to change: this step is already done." if self.session.env
                         else "Run discovery first (step 2).")
        blockers.update("\n".join(lines))
        blockers.display = bool(lines)
        commands = [cmd for c in self.changes for cmd in (f"# {c.summary}", *c.commands)]
        self.query_one(f"#commands-{self.STEP_ID}", TextArea).load_text("\n".join(commands))

    def _show_checks(self) -> None:
        ids = self._check_ids()
        findings = [f for f in self.session.findings if f.check_id in ids]
        fill_findings(self.app, self.query_one(f"#checks-{self.STEP_ID}", DataTable), findings)

    # --- actions --------------------------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        button = event.button.id or ""
        actions = {f"apply-{self.STEP_ID}": self.do_apply, f"copy-{self.STEP_ID}": self.do_copy,
                   f"refresh-{self.STEP_ID}": self.do_run}
        if button in actions:
            event.stop()
            actions[button]()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == f"checks-{self.STEP_ID}" and event.row_key.value:
            event.stop()
            self.open_finding(event.row_key.value)
        elif event.data_table.id == f"preview-{self.STEP_ID}" and event.row_key.value:
            event.stop()
            self.show_detail_of_selection()

    def do_run(self) -> None:
        self.refresh_from_session()

    def do_copy(self) -> None:
        text = self.query_one(f"#commands-{self.STEP_ID}", TextArea).text
        if not text:
            self.app.notify("There are no commands to copy: nothing to change.", markup=False)
            return
        self.app.copy_to_clipboard(text)
        self.app.notify(f"Copied {len(text.splitlines())} line(s) of commands to the clipboard.", markup=False)
        self.log_line(f"Copied the manual commands of step {self.STEP_ID}")

    def do_apply(self) -> None:
        if self.app_busy("changes"):
            self.app.notify("Changes are being applied: wait for them to finish (or cancel with x).", markup=False)
            return
        self.refresh_from_session()
        if self._offer_resume():
            return
        if self.blockers:
            first = self.blockers[0]
            self.problem(in_the_wizard(first.text), in_the_wizard(first.fix), title="This step cannot be applied yet")
            return
        if not self.changes:
            self.app.notify("Nothing to apply: this step is already done.", markup=False)
            return
        waiting = self.session.waiting_for(self.STEP_ID)
        if waiting:
            first = waiting[0].step
            self.problem(
                "These changes wait for changes of an earlier step that are not in place yet: "
                + "; ".join(c.summary for c in waiting),
                f"Apply the step '{first}' first.", step_id=first, title="An earlier step comes first")
            return
        if self.session.dry_run:
            self.log_line(f"Dry-run: {len(self.changes)} change(s) of step {self.STEP_ID} not applied:")
            for line in change_lines(self.changes):
                self.log_line(f"  would: {line}")
            self.app.notify("Dry-run: nothing was changed. The preview shows what Apply would do.", markup=False)
            return
        from ..modals import ConfirmModal

        def answered(yes: bool | None) -> None:
            if yes:
                self.start_apply()

        title = f"Apply {len(self.changes)} change(s) to {self.session.target.label}?"
        self.app.push_screen(ConfirmModal(title, change_lines(self.changes)), answered)

    def _offer_resume(self) -> bool:
        """An interrupted run of this target still has changes of this step: Apply finishes that run from its
        journal (a roll interrupted after its AD change never generates a second password; one interrupted before
        it rolls again, and the prompt says so)."""
        session = self.session
        if session.dry_run:
            return False
        path = session.unfinished_run(self.STEP_ID)
        if path is None:
            return False
        from ...service.operations import ROLL_AGAIN, remaining, rolls_again
        from ..modals import ConfirmModal

        left = remaining(path)

        def answered(yes: bool | None) -> None:
            if yes:
                self.start_resume(path)

        title = f"Finish the interrupted run: {len(left)} change(s) left on {session.target.label}?"
        lines = change_lines(left) + ([ROLL_AGAIN] if rolls_again(path) else []) + [f"Journal: {path}"]
        self.app.push_screen(ConfirmModal(title, lines, confirm="Resume"), answered)
        return True

    def start_apply(self) -> None:
        """The user confirmed: apply this step's changes through the executor, then read everything again."""
        session = self.session
        ids = [c.id for c in self.changes]
        self.log_line(f"Applying {len(ids)} change(s) of step {self.STEP_ID}")

        def work(progress: Any, cancel: Any) -> Any:
            result = session.apply(self.STEP_ID, ids, progress=self._change_progress(progress), cancel=cancel,
                                   reading=progress)
            if result.after is None:  # cancelled, or the read after the changes failed: read everything again
                session.recheck(progress)
            return result

        self.start_work(work, self.run_finished, name="apply", description="Applying the changes")

    def start_resume(self, path: Any, *, replay: bool = False) -> None:
        session = self.session
        self.log_line(f"Resuming {path}")

        def work(progress: Any, cancel: Any) -> Any:
            result = session.resume(path, progress=self._change_progress(progress), cancel=cancel, replay=replay,
                                    reading=progress)
            if result.after is None:  # cancelled, or the read after the changes failed: read everything again
                session.recheck(progress)
            return result

        self.start_work(work, self.run_finished, name="resume", description="Resuming the run")

    def _change_progress(self, progress: Any) -> Any:
        from ..messages import ChangeProgress

        def show(ev: Any) -> None:
            self.post_message(ChangeProgress(ev))
            progress(f"{ev.state}: {ev.summary}" + (f" ({ev.message})" if ev.message else ""), ev.index, ev.total)

        return show

    def on_change_progress(self, message: Any) -> None:
        message.stop()
        self.show_change(message.event)

    def show_change(self, event: Any) -> None:
        """One change's progress (the rollout pane shows it per server)."""

    def run_finished(self, result: Any) -> None:
        """The run ended (finished, failed or cancelled): the organisation was read again; everything redraws."""
        words = (f"{len(result.done)} done, {len(result.already)} already in place, {len(result.failed)} failed"
                 + (", cancelled: Apply resumes it" if result.cancelled else ""))
        self.work_finished(words)
        self.log_line(f"Journal: {result.journal}")
        for cid in result.done:
            self.log_line(f"Done: {cid}")
        self.state_changed()
        if result.cancelled:
            self.log_line("Cancelled: the journal keeps what was done; Apply resumes it.")
            self.app.notify("Cancelled. Apply again to resume from the journal.", markup=False)
            return
        if result.failed:
            lines = [f"{cid}: {why}" for cid, why in result.failed.items()]
            lines += [f"{cid}: not attempted, waits for {dep}" for cid, dep in result.skipped.items()]
            self.problem(f"{len(result.failed)} change(s) failed: " + "; ".join(lines),
                         "Fix the cause shown, then press a: Apply finishes the run from its journal.",
                         detail=f"Journal: {result.journal}", title="Some changes failed")
            return
        status = self.session.step_statuses().get(self.STEP_ID)
        failing = [f for f in self.session.findings if f.check_id in self._check_ids()
                   and str(getattr(f.status, "value", f.status)) == "fail"]
        for f in failing:
            self.log_line(f"Still failing: {f.title} ({f.subject}): {f.reason or f.evidence} Fix: {f.fix}")
        if status == "pass":
            self.app.notify("Step done: its checks pass.", markup=False)

    def _check_ids(self) -> set[str]:
        from ...core.steps import step

        return set(step(self.STEP_ID).checks)

    # --- option helpers ------------------------------------------------------------------------------------
    @property
    def answers(self) -> Any:
        return self.session.answers

    def options_changed(self) -> None:
        if self.is_mounted:
            self.refresh_from_session()


# -------------------------------------------------------------------------------------------------------
class AsaPane(ChangePane):
    STEP_ID = "asa"
    ENCTYPE_CHOICES = [("AES only (24), recommended", ENC_AES_ONLY), ("AES + RC4 (28)", ENC_AES_AND_RC4),
                       ("Leave as it is", 0)]

    def compose_options(self) -> ComposeResult:
        a = self.answers.asa
        yield Label("Use an existing ASA or create one", classes="field-label")
        yield Select([("Reuse the existing account", "reuse"), ("Create a new account", "create")],
                     value=a.mode, allow_blank=False, id="asa-mode")
        yield Label("Account name (sAMAccountName; a computer account ends in $)", classes="field-label")
        yield Input(value=a.name or "", id="asa-name")
        yield Label("Kind (new accounts)", classes="field-label")
        yield Select([("Computer account (recommended)", "computer"), ("User account", "user")],
                     value=str(a.kind), allow_blank=False, id="asa-kind")
        yield Label("OU for a new account (relative to the domain)", classes="field-label")
        yield Input(value=a.ou or "", placeholder="CN=Computers", id="asa-ou")
        yield Label("Encryption types", classes="field-label")
        yield Select(self.ENCTYPE_CHOICES, value=a.enctypes if a.enctypes is not None else 0, allow_blank=False,
                     id="asa-enctypes")
        yield Static("", id="asa-found", classes="hint", markup=False)

    def sync_options(self) -> None:
        """Discovery may have found the ASA nobody named: the choices then show it (reuse, its name)."""
        a = self.answers.asa
        found = self.query_one("#asa-found", Static)
        found_sam, how = self.session.asa_found or ("", "")
        text = (f"Found in the directory: {found_sam}" + (f" ({how})" if how else "")
                + ". It is reused, not created again." if found_sam and found_sam == a.name else "")
        found.update(text)
        found.display = bool(text)
        mode = self.query_one("#asa-mode", Select)
        if mode.value != a.mode:
            mode.value = a.mode
        name = self.query_one("#asa-name", Input)
        if (name.value.strip() or None) != a.name:
            name.value = a.name or ""

    def on_select_changed(self, event: Select.Changed) -> None:
        a = self.answers.asa
        if event.select.id == "asa-mode":
            a.mode = str(event.value)
        elif event.select.id == "asa-kind":
            a.kind = AccountKind(str(event.value))
        elif event.select.id == "asa-enctypes":
            a.enctypes = int(event.value) or None  # type: ignore[arg-type]
        else:
            return
        self.options_changed()

    def on_input_changed(self, event: Input.Changed) -> None:
        a = self.answers.asa
        if event.input.id == "asa-name":
            a.name = event.value.strip() or None
        elif event.input.id == "asa-ou":
            a.ou = event.value.strip() or None
        else:
            return
        self.options_changed()


class SpnPane(ChangePane):
    STEP_ID = "spns"

    def compose_options(self) -> ComposeResult:
        yield Label("Required SPNs and their current owners", classes="section-title")
        yield DataTable(id="spn-owners", cursor_type="row", zebra_stripes=True)
        yield Label("Move the SPN from these owners (tick only after checking nothing else uses them)",
                    classes="field-label")
        yield SelectionList[str](id="spn-move-from")
        yield TickBox("I confirmed by hand that every server holds the ASA's current credential (needed when the "
                       "servers cannot be read, as with Directory only)",
                       value=self.answers.spns.confirm_servers_hold_credential, id="spn-confirm")

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        if event.checkbox.id == "spn-confirm":
            event.stop()
            self.answers.spns.confirm_servers_hold_credential = event.value
            self.options_changed()

    def on_mount(self) -> None:
        # runs before ChangePane.on_mount (Textual calls every on_mount in the MRO, subclass first)
        self.query_one("#spn-owners", DataTable).add_columns("SPN", "State", "Owner(s)")

    def sync_options(self) -> None:
        confirm = self.query_one("#spn-confirm", TickBox)
        if confirm.value != self.answers.spns.confirm_servers_hold_credential:
            confirm.value = self.answers.spns.confirm_servers_hold_credential
        env = self.session.env
        table = self.query_one("#spn-owners", DataTable)
        table.clear()
        if env is None:
            return
        asa = env.account_by_sam(self.answers.asa.name or "") if self.answers.asa.name else None
        others: dict[str, str] = {}
        for ns in env.namespaces:
            owners = [env.account_by_dn(dn) for dn in env.spn_owners.get(ns.spn.lower(), [])]
            names = [o.sam if o else "?" for o in owners]
            on_asa = asa is not None and any(o is not None and o.dn == asa.dn for o in owners)
            wrong = [o for o in owners if o is not None and (asa is None or o.dn != asa.dn)]
            if not owners:
                state = "✖ missing"
            elif wrong:
                state = "✖ CONFLICT: on " + ", ".join(o.sam for o in wrong)
            else:
                state = "✔ on the ASA" if on_asa else "▲ check"
            for o in wrong:
                domain = env.forest.domain_of_dn(o.dn)
                others[o.qualified_name(domain.netbios_name) if domain else o.sam] = o.dn
            table.add_row(cell(ns.spn), cell(state), cell(", ".join(names) or "none"), key=ns.spn)
        chooser = self.query_one("#spn-move-from", SelectionList)
        chosen = {normalize_account(m) for m in self.answers.spns.move_from}
        existing = {str(o.value) for o in (chooser.get_option_at_index(i) for i in range(chooser.option_count))}
        if existing != set(others):
            chooser.clear_options()
            for qualified, dn in sorted(others.items()):
                prompt = Content(terminal_safe(f"{qualified}  ({dn})", single_line=True))  # plain: a DN may hold [ ]
                chooser.add_option((prompt, qualified, normalize_account(qualified) in chosen))

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged) -> None:
        event.stop()
        self.answers.spns.move_from = [str(v) for v in event.selection_list.selected]
        self.options_changed()


class ClientAuthPane(ChangePane):
    STEP_ID = "client-auth"

    def compose_options(self) -> ComposeResult:
        a = self.answers.client_auth
        yield TickBox("Outlook Anywhere: internal client authentication Negotiate", value=a.outlook_anywhere,
                       id="ca-oa")
        yield TickBox("MAPI over HTTP: add Negotiate (existing methods such as OAuth are kept)", value=a.mapi,
                       id="ca-mapi")

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        a = self.answers.client_auth
        if event.checkbox.id == "ca-oa":
            a.outlook_anywhere = event.value
        elif event.checkbox.id == "ca-mapi":
            a.mapi = event.value
        else:
            return
        self.options_changed()


class SegPane(ChangePane):
    STEP_ID = "seg"

    def compose_options(self) -> ComposeResult:
        s = self.answers.seg
        yield TickBox("This organisation has a Secure Email Gateway using KCD (otherwise skip this step)",
                       value=s.enabled, id="seg-enabled")
        yield Label("SEG service account (sAMAccountName)", classes="field-label")
        yield Input(value=s.service_account or "", placeholder="svc_awseg", id="seg-account")
        yield Label("Test users for the delegation proof (comma-separated)", classes="field-label")
        yield Input(value=", ".join(s.test_users), id="seg-users")
        yield TickBox("The SEG also proxies EWS", value=s.ews_proxy, id="seg-ews")

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        s = self.answers.seg
        if event.checkbox.id == "seg-enabled":
            s.enabled = event.value
            self.answers.iis_auth.enabled = event.value
        elif event.checkbox.id == "seg-ews":
            s.ews_proxy = event.value
        else:
            return
        self.options_changed()

    def on_input_changed(self, event: Input.Changed) -> None:
        s = self.answers.seg
        if event.input.id == "seg-account":
            s.service_account = event.value.strip() or None
        elif event.input.id == "seg-users":
            s.test_users = [u.strip() for u in event.value.split(",") if u.strip()]
        else:
            return
        self.options_changed()


class IisAuthPane(ChangePane):
    STEP_ID = "iis-auth"

    def compose_options(self) -> ComposeResult:
        yield TickBox("Windows authentication with Negotiate on ActiveSync (and EWS when the SEG proxies it)",
                       value=self.answers.iis_auth.enabled, id="iis-enabled")

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        if event.checkbox.id == "iis-enabled":
            self.answers.iis_auth.enabled = event.value
            self.options_changed()


PANES: dict[str, type[ChangePane]] = {p.STEP_ID: p for p in (AsaPane, SpnPane, ClientAuthPane, SegPane,
                                                               IisAuthPane)}


def change_pane(step_id: str) -> type[ChangePane]:
    return PANES[step_id]
