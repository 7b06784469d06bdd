"""The lab's Exchange remote PowerShell endpoint: `/PowerShell` with the Microsoft.Exchange configuration.

A real PSRP server (psrpcore's sans-IO `ServerRunspacePool` / `ServerPipeline`) behind the WS-Management
shell operations that pypsrp sends, as IIS-hosted `http://<fqdn>/PowerShell` does on an Exchange server:

- Create (resource URI `http://schemas.microsoft.com/powershell/Microsoft.Exchange`, the creationXml holding
  SessionCapability + InitRunspacePool) opens one runspace pool; the session is opened with the lab's Exchange
  model (`exchange_cmdlets.open_session`), which may refuse it (`RemotePowerShellEnabled` is $false): then the
  Create answers a WS-Management access-denied fault (code 5) with the refusal's text.
- Command (the first fragment of CreatePipeline or GetCommandMetadata in its argument), Send (further
  fragments, the PublicKey of the session-key exchange), Receive (long-polls up to the request's
  OperationTimeout, then the 2150858793 fault pypsrp retries on), Signal (stop / terminate), Delete (close).
- No-language mode: a pipeline holding any script is refused with Exchange's parse error and runs nothing.
- GetCommandMetadata is answered from `command_metadata` (RBAC decides which parameters exist).
- SecureStrings (PSCredential passwords) are decrypted with the pool's session key on input and encrypted
  with it on output, so a password only ever travels encrypted inside the CLIXML.

Routing is one path per server (`/PowerShell/<server>`) on the lab's loopback HTTPS listener, which
`asa_wizard.lab.wsman` owns; this module only answers the SOAP bodies. Lab deviation (documented in
docs/exchange-endpoint.md): Basic over HTTPS with lab credentials instead of Kerberos over HTTP with message
encryption, because the embedded lab has no KDC.
"""

from __future__ import annotations

import base64
import functools
import hmac
import importlib
import re
import threading
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping
from xml.sax.saxutils import escape

import psrpcore
from psrpcore._payload import PSRPMessage, create_message
from psrpcore.types import (
    ApplicationPrivateData,
    CommandTypes,
    ErrorCategory,
    ErrorCategoryInfo,
    ErrorRecord,
    NETException,
    PSBool,
    PSCredential,
    PSCustomObject,
    PSDateTime,
    PSInt,
    PSInvocationState,
    PSNoteProperty,
    PSObject,
    PSPrimitiveDictionary,
    PSRPMessageType,
    PSSecureString,
    PSString,
    PSType,
    PSVersion,
    PipelineState,
    RunspacePoolStateMsg,
    SessionCapability,
    serialize,
)
from psrpcore.types._serializer import _serialize_datetime, _serialize_string

from ..core.secrets import Secret

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "p": "http://schemas.microsoft.com/powershell",
}
SHELL = NS["rsp"] + "/"
TRANSFER = NS["x"] + "/"
EXCHANGE_URI = "http://schemas.microsoft.com/powershell/Microsoft.Exchange"
FAULT_TIMEOUT = 2150858793
FAULT_NOT_IN_CATALOG = 2150858811
FAULT_ACCESS_DENIED = 5
FAULT_QUOTA_MAX_SHELLS = 2150859173  # 0x803381A5 ERROR_WSMAN_QUOTA_MAX_SHELLS
MAX_SHELLS_PER_USER = 18  # Exchange's default throttling policy: PowerShellMaxConcurrency
NO_LANGUAGE = ("The syntax is not supported by this runspace. This can occur if the runspace is in "
               "no-language mode.")
MAX_FRAGMENT = 150 * 1024  # bytes of PSRP data per Receive stream element


def not_in_catalog(resource_uri: str) -> str:
    """The fault text a WS-Management listener gives for a configuration it does not host."""
    return (f"The WS-Management service cannot process the request. The resource URI ({resource_uri}) was not "
            "found in the WS-Management catalog. The catalog contains the metadata that describes resources, "
            "or logical endpoints.")


@PSType(["System.Management.Automation.ParameterMetadata"],
        adapted_properties=[PSNoteProperty("Name", ps_type=PSString),
                            PSNoteProperty("ParameterType", ps_type=PSString),
                            PSNoteProperty("Aliases"),
                            PSNoteProperty("SwitchParameter", ps_type=PSBool),
                            PSNoteProperty("IsDynamic", ps_type=PSBool)])
class _ParameterMetadata(PSObject):
    """[MS-PSRP] 2.2.3.23 ParameterMetadata, as a GetCommandMetadata reply carries it."""


class WsmanFault(Exception):
    def __init__(self, reason: str, code: int = 2150858770) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass
class _Pipe:
    pipeline: psrpcore.ServerPipeline
    command_id: str
    done: threading.Event = field(default_factory=threading.Event)
    started: bool = False


class Clixml:
    """One output object already serialised (UTF-8 CLIXML, exactly what psrpcore's serializer makes of it)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class _LabRunspacePool(psrpcore.ServerRunspacePool):
    """psrpcore's server runspace pool, which also queues an output object given as `Clixml`, and serialises
    each of its own protocol messages that do not change (the session capability, the application private
    data, an Opened or pipeline state without an error) once per process: psrpcore frames, numbers, fragments
    and sends them like any other message; only the serialisation was done beforehand."""

    def prepare_message(self, message: Any, message_type: Any = None, pipeline_id: Any = None,
                        stream_type: psrpcore.StreamType = psrpcore.StreamType.default) -> None:
        if isinstance(message, Clixml):
            data = message.data
        else:
            key = constant_message_key(message, message_type)
            if key is None:
                return super().prepare_message(message, message_type, pipeline_id, stream_type)
            with _MESSAGES_LOCK:
                data = _MESSAGES.get(key)
            if data is None:
                data = psrpcore_clixml(message, self)
                with _MESSAGES_LOCK:
                    _MESSAGES[key] = data
            if message_type is None:
                message_type = PSRPMessageType.get_message_id(type(message))
        framed = create_message(self._is_client, message_type, data, self.runspace_pool_id, pipeline_id)
        self._send_buffer.append(PSRPMessage(message_type, bytearray(framed), self.runspace_pool_id, pipeline_id,
                                             self._fragment_counter, stream_type))
        return None


_CONSTANT = (SessionCapability, ApplicationPrivateData, RunspacePoolStateMsg, PipelineState)
_MESSAGES: dict[tuple[Any, ...], bytes] = {}
_MESSAGES_LOCK = threading.Lock()


def constant_message_key(message: Any, message_type: Any = None) -> tuple[Any, ...] | None:
    """A key that determines psrpcore's serialisation of `message`, for the protocol messages a pool sends on
    every open and every pipeline, when each of their property values is plain (None, a version, an integer,
    a string, a dictionary of those); None for anything else (an error record, another message)."""
    kind = type(message)
    if kind not in _CONSTANT:
        return None
    meta = message.PSObject
    try:
        values = tuple((p.name, _freeze(p.get_value(message)))
                       for p in (*meta.adapted_properties, *meta.extended_properties))
    except _NotPlain:
        return None
    return (kind, message_type, tuple(meta.type_names), values)


def _freeze(v: Any) -> Any:
    kind = type(v)
    if v is None:
        return None
    if kind in (str, int, bool):
        return (kind, str(v))
    if kind in (PSInt, PSVersion):
        meta = v.PSObject
        if meta.extended_properties or meta.adapted_properties:  # an extended primitive: serialised otherwise
            raise _NotPlain(kind.__name__)
        return (kind, str(v), tuple(meta.type_names), meta.to_string)
    if kind in (dict, PSPrimitiveDictionary):
        meta = getattr(v, "PSObject", None)
        if meta is not None and (meta.extended_properties or meta.adapted_properties):
            raise _NotPlain(kind.__name__)
        names = tuple(meta.type_names) if meta is not None else ()
        return (kind, names, tuple((_freeze(k), _freeze(x)) for k, x in v.items()))
    raise _NotPlain(kind.__name__)


class _Shell:
    """One runspace pool (a WS-Management shell) and the session it belongs to."""

    def __init__(self, shell_id: str, server: str, user: str, session: Any) -> None:
        self.id = shell_id
        self.server = server
        self.user = user
        self.session = session
        self.pool = _LabRunspacePool()
        self.lock = threading.RLock()
        self.ready = threading.Condition(self.lock)
        self.out: dict[str | None, list[bytes]] = {}  # pipeline id (upper) or None (the pool) -> fragments
        self.pipes: dict[str, _Pipe] = {}  # command id (upper) -> pipe
        self.closed = False

    def flush(self) -> None:
        """Move everything psrpcore has to send into the per-target queues (call with the lock held)."""
        while True:
            payload = self.pool.data_to_send(MAX_FRAGMENT)
            if payload is None:
                break
            key = str(payload.pipeline_id).upper() if payload.pipeline_id else None
            self.out.setdefault(key, []).append(bytes(payload.data))
        self.ready.notify_all()


class LabPsrpEndpoint:
    """Answers the WS-Management shell operations of `/PowerShell/<server>` for every lab server."""

    def __init__(self, exchange: Any, backend: Any = None) -> None:
        self.exchange = exchange
        self._backend = backend
        self.creates: list[tuple[str, str]] = []  # (server, user) of every pool Create received
        self.received: list[tuple[str, str, dict[str, Any]]] = []  # (server, cmdlet, parameter names->type)
        self._shells: dict[str, _Shell] = {}
        self._lock = threading.Lock()

    # --- wiring -------------------------------------------------------------------------------------
    @property
    def backend(self) -> Any:
        """The Exchange model (`asa_wizard.lab.exchange_cmdlets` unless one was given)."""
        if self._backend is None:
            self._backend = importlib.import_module("asa_wizard.lab.exchange_cmdlets")
        return self._backend

    def logons(self) -> dict[str, str]:
        """user -> password the endpoint accepts: the scenario's lab admin, plus the model's lab users."""
        user, password = self.exchange.current_credentials()
        out = {user.lower(): password}
        extra: Callable[[Any], Mapping[str, str]] | None = getattr(self.backend, "lab_logons", None)
        if extra is not None:
            out.update({u.lower(): p for u, p in extra(self.exchange).items()})
        return out

    def authenticate(self, header: str | None) -> str | None:
        """The DOMAIN\\user of a valid Basic Authorization header, else None."""
        if not header or not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        for known, expected in self.logons().items():
            if known == user.lower() and hmac.compare_digest(password.encode(), expected.encode()):
                return user
        return None

    def can_delegate(self, server: str, user: str) -> bool:
        """Whether a session's logon reaches a further server (CredSSP / delegation): the model's
        `session_can_delegate` hook decides if it has one, else the scenario's `sessions_can_delegate` lab
        setting, else no (a plain Kerberos network logon)."""
        decide = getattr(self.backend, "session_can_delegate", None)
        if decide is not None:
            return bool(decide(self.exchange, server, user))
        return bool(getattr(self.exchange.current_scenario(), "sessions_can_delegate", False))

    def open_shells(self) -> int:
        with self._lock:
            return sum(1 for s in self._shells.values() if not s.closed)

    def close_all(self) -> None:
        with self._lock:
            shells, self._shells = list(self._shells.values()), {}
        for shell in shells:
            with shell.lock:
                shell.closed = True
                for pipe in shell.pipes.values():
                    pipe.done.set()
                shell.ready.notify_all()

    # --- SOAP ---------------------------------------------------------------------------------------
    def dispatch(self, server: str, user: str, data: bytes) -> tuple[int, str]:
        root = ET.fromstring(data)
        action = root.findtext("s:Header/a:Action", "", NS)
        mid = root.findtext("s:Header/a:MessageID", "", NS)
        uri = root.findtext("s:Header/w:ResourceURI", "", NS)
        body = root.find("s:Body", NS)
        try:
            if uri != EXCHANGE_URI:
                raise WsmanFault(not_in_catalog(uri), FAULT_NOT_IN_CATALOG)
            if action == TRANSFER + "Create" and body is not None:
                out = self._create(server, user, body)
            else:
                shell = self._shell(root, user)
                if action == SHELL + "Command" and body is not None:
                    out = self._command(shell, body)
                elif action == SHELL + "Send" and body is not None:
                    out = self._send(shell, body)
                elif action == SHELL + "Receive" and body is not None:
                    out = self._receive(shell, body, operation_timeout(root))
                elif action == SHELL + "Signal" and body is not None:
                    out = self._signal(shell, body)
                elif action == TRANSFER + "Delete":
                    out = self._delete(shell)
                else:
                    raise WsmanFault(f"The action {action} is not supported by the WS-Management service.",
                                     2150858771)
        except WsmanFault as fault:
            return 500, fault_envelope(mid, fault.reason, fault.code)
        return 200, envelope(action + "Response", mid, out)

    def _shell(self, root: ET.Element, user: str) -> _Shell:
        sid = shell_id(root)
        with self._lock:
            shell = self._shells.get(sid)
        if shell is None or shell.closed or shell.user.lower() != user.lower():
            raise WsmanFault(f"The request for the Windows Remote Shell with ShellId {sid} failed because the "
                             "shell was not found on the server. Possible causes are: the specified ShellId is "
                             "incorrect or the shell no longer exists on the server.", 2150858843)
        return shell

    def _create(self, server: str, user: str, body: ET.Element) -> str:
        backend = self.backend
        with self._lock:
            self.creates.append((server, user))
            held = sum(1 for s in self._shells.values()
                       if not s.closed and s.server.lower() == server.lower() and s.user.lower() == user.lower())
        if held >= MAX_SHELLS_PER_USER:  # Exchange's default throttling policy: PowerShellMaxConcurrency 18
            raise WsmanFault(f"The WS-Management service cannot process the request. This user is allowed a maximum "
                             f"number of {MAX_SHELLS_PER_USER} concurrent shells, which has been exceeded. Close "
                             "existing shells or raise the quota for this user.", FAULT_QUOTA_MAX_SHELLS)
        try:
            session = backend.open_session(self.exchange, server, user, self.can_delegate(server, user))
        except backend.SessionRefused as exc:
            raise WsmanFault(str(exc).strip() or "Access is denied.", FAULT_ACCESS_DENIED) from None
        shell_el = body.find("rsp:Shell", NS)
        sid = (shell_el.get("ShellId") if shell_el is not None else None) or str(uuid.uuid4())
        sid = sid.upper()
        creation = shell_el.findtext("p:creationXml", "", NS) if shell_el is not None else ""
        shell = _Shell(sid, server, user, session)
        with shell.lock:
            try:
                shell.pool.receive_data(psrpcore.PSRPPayload(base64.b64decode(creation),
                                                             psrpcore.StreamType.default, None))
                self._drain(shell)
            except (psrpcore.PSRPCoreError, ValueError) as exc:
                raise WsmanFault(f"The WS-Management service cannot process the request: {exc}") from None
            shell.flush()
        with self._lock:
            self._shells[sid] = shell
        return (f"<x:ResourceCreated><a:Address>https://{escape(server)}/PowerShell</a:Address>"
                f"<a:ReferenceParameters><w:ResourceURI>{EXCHANGE_URI}</w:ResourceURI><w:SelectorSet>"
                f'<w:Selector Name="ShellId">{sid}</w:Selector></w:SelectorSet></a:ReferenceParameters>'
                f"</x:ResourceCreated><rsp:Shell><rsp:ShellId>{sid}</rsp:ShellId>"
                f"<rsp:ResourceUri>{EXCHANGE_URI}</rsp:ResourceUri><rsp:Owner>{escape(user)}</rsp:Owner>"
                "<rsp:InputStreams>stdin pr</rsp:InputStreams><rsp:OutputStreams>stdout</rsp:OutputStreams>"
                "</rsp:Shell>")

    def _command(self, shell: _Shell, body: ET.Element) -> str:
        line = body.find("rsp:CommandLine", NS)
        cid = ((line.get("CommandId") if line is not None else None) or str(uuid.uuid4())).upper()
        args = [a.text or "" for a in line.findall("rsp:Arguments", NS)] if line is not None else []
        with shell.lock:
            pipe = _Pipe(psrpcore.ServerPipeline(shell.pool, uuid.UUID(cid)), cid)
            shell.pipes[cid] = pipe
            try:
                for a in args:
                    shell.pool.receive_data(psrpcore.PSRPPayload(base64.b64decode(a), psrpcore.StreamType.default,
                                                                 uuid.UUID(cid)))
                self._drain(shell)
            except (psrpcore.PSRPCoreError, ValueError) as exc:
                raise WsmanFault(f"The WS-Management service cannot process the request: {exc}") from None
            shell.flush()
        return f"<rsp:CommandResponse><rsp:CommandId>{cid}</rsp:CommandId></rsp:CommandResponse>"

    def _send(self, shell: _Shell, body: ET.Element) -> str:
        with shell.lock:
            for stream in body.findall("rsp:Send/rsp:Stream", NS):
                cid = (stream.get("CommandId") or "").upper() or None
                kind = (psrpcore.StreamType.prompt_response if stream.get("Name") == "pr"
                        else psrpcore.StreamType.default)
                try:
                    shell.pool.receive_data(psrpcore.PSRPPayload(base64.b64decode(stream.text or ""), kind,
                                                                 uuid.UUID(cid) if cid else None))
                    self._drain(shell)
                except (psrpcore.PSRPCoreError, ValueError) as exc:
                    raise WsmanFault(f"The WS-Management service cannot process the request: {exc}") from None
            shell.flush()
        return "<rsp:SendResponse/>"

    def _receive(self, shell: _Shell, body: ET.Element, timeout: float) -> str:
        desired = body.find("rsp:Receive/rsp:DesiredStream", NS)
        cid = ((desired.get("CommandId") if desired is not None else None) or "").upper() or None
        with shell.lock:
            pipe = shell.pipes.get(cid) if cid else None
            if cid and pipe is None:
                raise WsmanFault(f"The request for the Windows Remote Shell with CommandId {cid} failed because "
                                 "the command was not found.")

            def ready() -> bool:
                return bool(shell.out.get(cid)) or shell.closed or (pipe is not None and pipe.done.is_set())

            if not shell.ready.wait_for(ready, timeout):
                raise WsmanFault("The WS-Management service cannot complete the operation within the time "
                                 "specified in OperationTimeout.", FAULT_TIMEOUT)
            chunks = shell.out.pop(cid, [])
            # done is set after the pipeline's last message was queued, so these chunks are all there is
            finished = pipe is not None and pipe.done.is_set()
        attr = f' CommandId="{cid}"' if cid else ""
        streams = "".join(f'<rsp:Stream Name="stdout"{attr}>{base64.b64encode(c).decode()}</rsp:Stream>'
                          for c in chunks)
        state = ""
        if cid:
            name = "Done" if finished else "Running"
            end = f'<rsp:Stream Name="stdout"{attr} End="true"/>' if finished else ""
            state = f'{end}<rsp:CommandState{attr} State="{SHELL}CommandState/{name}"/>'
        return f"<rsp:ReceiveResponse>{streams}{state}</rsp:ReceiveResponse>"

    def _signal(self, shell: _Shell, body: ET.Element) -> str:
        sig = body.find("rsp:Signal", NS)
        cid = (sig.get("CommandId", "") if sig is not None else "").upper()
        with shell.lock:
            pipe = shell.pipes.get(cid)
            if pipe is not None:
                if pipe.pipeline.state == PSInvocationState.Running:
                    pipe.pipeline.stop()
                pipe.done.set()
                shell.pipes.pop(cid, None)
                shell.flush()
        return "<rsp:SignalResponse/>"

    def _delete(self, shell: _Shell) -> str:
        with self._lock:
            self._shells.pop(shell.id, None)
        with shell.lock:
            shell.closed = True
            for pipe in shell.pipes.values():
                pipe.done.set()
            shell.ready.notify_all()
        return ""

    # --- PSRP events --------------------------------------------------------------------------------
    def _drain(self, shell: _Shell) -> None:
        """Process every complete PSRP message received (call with the shell's lock held)."""
        while True:
            event = shell.pool.next_event()
            if event is None:
                return
            if isinstance(event, (psrpcore.CreatePipelineEvent, psrpcore.GetCommandMetadataEvent)):
                cid = str(event.pipeline_id).upper()
                pipe = shell.pipes.get(cid)
                if pipe is not None and not pipe.started:
                    pipe.started = True
                    threading.Thread(target=self._run, args=(shell, pipe, event), name=f"lab-rps-{shell.server}",
                                     daemon=True).start()

    def _run(self, shell: _Shell, pipe: _Pipe, event: Any) -> None:
        """Run one pipeline (in its own thread, as a server runs it while the client polls)."""
        try:
            if isinstance(event, psrpcore.GetCommandMetadataEvent):
                self._run_metadata(shell, pipe, event.pipeline)
            else:
                self._run_pipeline(shell, pipe, event.pipeline)
        except Exception as exc:  # the lab must answer whatever happens: as a PowerShell error
            with shell.lock:
                if pipe.pipeline.state == PSInvocationState.Running:
                    _write_error(pipe.pipeline, f"Internal lab error: {type(exc).__name__}: {exc}", "NotSpecified",
                                 "LabInternalError", "")
                    pipe.pipeline.complete()
        finally:
            with shell.lock:
                pipe.done.set()
                shell.flush()

    def _run_metadata(self, shell: _Shell, pipe: _Pipe, meta: Any) -> None:
        found: list[tuple[str, list[str]]] = []
        for name in meta.name or []:
            params = self.backend.command_metadata(self.exchange, shell.session, str(name))
            if params is not None:
                found.append((_cmdlet_name(str(name)), list(params)))
        with shell.lock:
            p = pipe.pipeline
            p.start()
            p.write_output(_metadata_clixml(shell.pool, ("count", len(found))))
            for name, params in found:
                p.write_output(_metadata_clixml(shell.pool, ("cmdlet", name, tuple(params))))
            p.complete()

    def _run_pipeline(self, shell: _Shell, pipe: _Pipe, ps: Any) -> None:
        commands = list(ps.commands or [])
        with shell.lock:
            if not commands or any(c.is_script for c in commands):
                # no-language mode: the runspace refuses to parse anything but commands; nothing runs
                err = ErrorRecord(Exception=NETException(Message=NO_LANGUAGE),
                                  CategoryInfo=ErrorCategoryInfo(Category=ErrorCategory.ParserError,
                                                                 Reason="ParseException"),
                                  FullyQualifiedErrorId="ScriptsNotAllowed")
                pipe.pipeline.start()
                pipe.pipeline._change_state(PSInvocationState.Failed, error=err)  # psrpcore has no public "fail"
                return
            pipe.pipeline.start()
        outputs: list[dict[str, Any]] = []
        error: Any = None
        for cmd in commands:  # Exchange cmdlets are used one per pipeline; several run one after another
            name = str(cmd.command_text)
            params = {str(n) if n is not None else "": _from_ps(v) for n, v in cmd.parameters}
            with self._lock:
                self.received.append((shell.server, name, {k: type(v).__name__ for k, v in params.items()}))
            try:
                outputs.extend(self.backend.invoke_cmdlet(self.exchange, shell.session, name, params))
            except self.backend.CmdletError as exc:
                error = exc
                break
        with shell.lock:
            p = pipe.pipeline
            for obj in outputs:
                if isinstance(obj, self.backend.CmdletError):  # a non-terminating error among the rows
                    _write_error(p, obj.message, obj.category, obj.error_id, obj.target)
                else:
                    p.write_output(_output(obj))
            if error is not None:
                _write_error(p, str(error.args[0]) if error.args else str(error),
                             getattr(error, "category", "NotSpecified"), getattr(error, "error_id", ""),
                             getattr(error, "target", ""))
            p.complete()


# --- GetCommandMetadata replies ----------------------------------------------------------------------------
def metadata_object(key: tuple[Any, ...]) -> PSObject:
    """One object of a GetCommandMetadata reply ([MS-PSRP] 3.1.4.5): ("count", n) is the leading
    GenericMeasureInfo, ("cmdlet", name, parameter names) one CommandMetadata."""
    if key[0] == "count":
        return PSCustomObject(PSTypeName="Selected.Microsoft.PowerShell.Commands.GenericMeasureInfo", Count=key[1])
    _, name, params = key
    return PSCustomObject(
        PSTypeName="Selected.System.Management.Automation.CmdletInfo", Name=name,
        Namespace="tmp_exchange", HelpUri="", CommandType=CommandTypes.Function,
        ResolvedCommandName=None, OutputType=[],
        Parameters={n: _ParameterMetadata(Name=n, ParameterType="System.Object", Aliases=[],
                                          SwitchParameter=False, IsDynamic=False) for n in params})


_METADATA: dict[tuple[Any, ...], bytes] = {}
_METADATA_LOCK = threading.Lock()


def _metadata_clixml(pool: psrpcore.ServerRunspacePool, key: tuple[Any, ...]) -> Clixml:
    """psrpcore's serialisation of `metadata_object(key)`, made once per process: a command's metadata depends
    only on its name and the parameters RBAC shows (a handful of distinct replies), while every server's
    pre-flight asks for it."""
    version = str(getattr(pool.their_capability, "protocol_version", ""))
    with _METADATA_LOCK:
        data = _METADATA.get((version, *key))
    if data is None:
        data = psrpcore_clixml(metadata_object(key), pool)
        with _METADATA_LOCK:
            _METADATA[(version, *key)] = data
    return Clixml(data)


# --- conversions ------------------------------------------------------------------------------------------
def _cmdlet_name(name: str) -> str:
    return name.strip()


def _write_error(pipeline: psrpcore.ServerPipeline, message: str, category: str, error_id: str,
                 target: str) -> None:
    try:
        cat = ErrorCategory[category]
    except KeyError:
        cat = ErrorCategory.NotSpecified
    pipeline.write_error(NETException(Message=message),
                         ErrorCategoryInfo(Category=cat, Reason=category, TargetName=target or None),
                         target_object=target or None, fully_qualified_error_id=error_id or category)


def _from_ps(value: Any) -> Any:
    """A parameter value as received -> plain Python (PSCredential -> PsCredential, SecureString -> Secret)."""
    from ..adapters.psrp import PsCredential

    if value is None:
        return True  # a parameter without a value is a switch that is present
    if isinstance(value, PSSecureString):
        return Secret(value.decrypt())
    if isinstance(value, PSCredential) or "System.Management.Automation.PSCredential" in _type_names(value):
        password = value.Password
        secret = Secret(password.decrypt()) if isinstance(password, PSSecureString) else None
        return PsCredential(str(value.UserName), secret)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, PSBool):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, (list, tuple)):
        return [_from_ps(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _from_ps(v) for k, v in value.items()}
    return value


def _type_names(value: Any) -> list[str]:
    names = getattr(getattr(value, "PSObject", None), "type_names", None) or []
    return [n[len("Deserialized."):] if n.startswith("Deserialized.") else n for n in names]


def _to_ps(value: Any) -> Any:
    """A model value -> the PSObject Exchange would serialize (dicts become objects with those properties)."""
    from ..adapters.psrp import PsCredential

    if isinstance(value, PsCredential):
        password = PSSecureString(value.password.reveal()) if value.password is not None else None
        return PSCredential(UserName=value.user, Password=password)
    if isinstance(value, Secret):
        return PSSecureString(value.reveal())
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return PSDateTime(value.astimezone(timezone.utc))
    if isinstance(value, dict):
        # what PSCustomObject(**properties) builds, with the object's property list looked up once (psrpcore
        # resolves `obj.PSObject` through its attribute machinery on every property otherwise)
        obj = PSCustomObject()
        meta = obj.PSObject
        for k, v in value.items():
            if k == "PSTypeName":
                meta.type_names.insert(0, v)
            else:
                meta.extended_properties.append(PSNoteProperty(str(k), value=_to_ps(v)))
        return obj
    if isinstance(value, (list, tuple)):
        return [_to_ps(v) for v in value]
    return value


# --- output objects as CLIXML, without building PSObjects ------------------------------------------------
_CUSTOM = ("System.Management.Automation.PSCustomObject", "System.Object")
_ARRAY = ("System.Collections.ArrayList", "System.Object")
_CREDENTIAL = ("System.Management.Automation.PSCredential", "System.Object")
_INT32_MAX = 2147483647
_INT32_MIN = -2147483648
# what psrpcore's `_serialize_string` escapes: C0/C1 controls, surrogates, astral characters, "_x"
_NEEDS_ESCAPE = re.compile("[\u0000-\u001F\u007F-\u009F\uD800-\uDFFF\U00010000-\U0010FFFF]|_[xX]")


class _NotPlain(Exception):
    """A value the direct writer does not handle (a password, an enum, ...): psrpcore serialises it."""


def _escape(text: str) -> str:
    """XML's escaping of element text (what ElementTree writes)."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


def _text(value: str) -> str:
    """A string as CLIXML element text (psrpcore's escaping, then XML's)."""
    if _NEEDS_ESCAPE.search(value):
        value = _serialize_string(value)
    return _escape(value)


@functools.lru_cache(maxsize=4096)
def _attr(value: str) -> str:
    """A property name as the N attribute (psrpcore's escaping, then XML's attribute escaping); a row's
    property names repeat in every row, so each is escaped once."""
    return _escape(_serialize_string(value)).replace('"', "&quot;")


class _ClixmlWriter:
    """The CLIXML psrpcore's serializer writes for `_to_ps(value)` of a model value made of None, bool, int, str,
    datetime, lists, dicts (PSCustomObjects, `PSTypeName` first among their type names) and credentials without a
    password: the same elements, reference ids, type-name references and escaping, written as text directly
    instead of through PSObjects and an ElementTree. Anything else raises `_NotPlain`."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.ref = 0
        self.types: dict[str, int] = {}  # main type name -> its TN RefId in this message

    def _open(self, name: str, type_names: tuple[str, ...] | list[str]) -> None:
        ref = self.ref
        self.ref += 1
        known = self.types.get(type_names[0])
        if known is None:
            known = self.types[type_names[0]] = len(self.types)
            tn = f'<TN RefId="{known}">' + "".join(f"<T>{_escape(t)}</T>" for t in type_names) + "</TN>"
        else:
            tn = f'<TNRef RefId="{known}" />'
        self.out.append(f'<Obj RefId="{ref}"{name}>{tn}')

    def value(self, v: Any, name: str = "") -> None:
        out = self.out
        kind = type(v)
        if v is None:
            out.append(f"<Nil{name} />")
        elif kind is bool:
            out.append(f"<B{name}>{'true' if v else 'false'}</B>")
        elif kind is int and v >= _INT32_MIN:  # psrpcore has no element for an integer below Int32's range
            tag = "I64" if v > _INT32_MAX else "I32"
            out.append(f"<{tag}{name}>{v}</{tag}>")
        elif kind is str:
            text = _text(v)
            out.append(f"<S{name}>{text}</S>" if text else f"<S{name} />")
        elif kind is datetime:
            when = (v if v.tzinfo is not None else v.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
            out.append(f"<DT{name}>{_escape(_serialize_datetime(when))}</DT>")
        elif kind is dict:
            type_name = v.get("PSTypeName")
            if type_name is not None and type(type_name) is not str:
                raise _NotPlain(type(type_name).__name__)
            self._open(name, (type_name, *_CUSTOM) if type_name is not None else _CUSTOM)
            props = [(k, x) for k, x in v.items() if k != "PSTypeName"]
            if props:
                out.append("<MS>")
                for k, x in props:
                    self.value(x, f' N="{_attr(str(k))}"')
                out.append("</MS>")
            out.append("</Obj>")
        elif kind is list or kind is tuple:
            self._open(name, _ARRAY)
            if v:
                out.append("<LST>")
                for x in v:
                    self.value(x)
                out.append("</LST></Obj>")
            else:
                out.append("<LST /></Obj>")
        elif _is_credential_without_password(v):
            self._open(name, _CREDENTIAL)
            out.append("<Props>")
            self.value(v.user, ' N="UserName"')
            out.append('<Nil N="Password" /></Props></Obj>')
        else:
            raise _NotPlain(kind.__name__)


def _is_credential_without_password(v: Any) -> bool:
    from ..adapters.psrp import PsCredential

    return type(v) is PsCredential and v.password is None and type(v.user) is str


def fast_clixml(value: Any) -> bytes | None:
    """The UTF-8 CLIXML of one output object as psrpcore would serialise `_to_ps(value)`, or None when the
    value holds something only psrpcore serialises (a SecureString needs the pool's session key)."""
    writer = _ClixmlWriter()
    try:
        writer.value(value)
    except _NotPlain:
        return None
    return "".join(writer.out).encode("utf-8")


def psrpcore_clixml(value: Any, pool: psrpcore.ServerRunspacePool | None = None) -> bytes:
    """What psrpcore's own serializer makes of a PSObject (or `_to_ps` of a model value), as the pool would
    send it: the reference the fast path is tested against, and the bytes the metadata cache keeps."""
    obj = value if isinstance(value, PSObject) else _to_ps(value)
    kwargs = {} if pool is None else {"our_capability": pool.our_capability, "their_capability": pool.their_capability}
    element = serialize(obj, pool._cipher if pool is not None else None, **kwargs)  # type: ignore[arg-type]
    return ET.tostring(element, encoding="utf-8", method="xml")


def _output(value: Any) -> Any:
    """What a pipeline writes for one model value: its CLIXML when the direct writer handles it, else the
    PSObject psrpcore serialises itself."""
    data = fast_clixml(value)
    return Clixml(data) if data is not None else _to_ps(value)


def shell_id(root: ET.Element) -> str:
    """The ShellId selector of a request (upper case), "" without one."""
    sid = ""
    for sel in root.findall("s:Header/w:SelectorSet/w:Selector", NS):
        if sel.get("Name") == "ShellId":
            sid = (sel.text or "").upper()
    return sid


def operation_timeout(root: ET.Element) -> float:
    """The request's WS-Management OperationTimeout in seconds (20 when absent), at most 120."""
    text = root.findtext("s:Header/w:OperationTimeout", "PT20S", NS)
    m = re.fullmatch(r"PT(\d+(?:\.\d+)?)S", text.strip())
    return min(float(m.group(1)) if m else 20.0, 120.0)


def fault_envelope(relates_to: str, reason: str, code: int) -> str:
    body = (f'<s:Fault><s:Code><s:Value>s:Receiver</s:Value></s:Code><s:Reason><s:Text xml:lang="en-US">'
            f"{escape(reason)}</s:Text></s:Reason><s:Detail><f:WSManFault "
            f'xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="{code}" Machine="lab">'
            f"<f:Message>{escape(reason)}</f:Message></f:WSManFault></s:Detail></s:Fault>")
    return envelope("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", relates_to, body)


def envelope(action: str, relates_to: str, body: str) -> str:
    """A SOAP envelope answering the request `relates_to`."""
    return (f'<s:Envelope xmlns:s="{NS["s"]}" xmlns:a="{NS["a"]}" xmlns:w="{NS["w"]}" xmlns:rsp="{NS["rsp"]}" '
            f'xmlns:x="{NS["x"]}"><s:Header><a:Action>{action}</a:Action><a:MessageID>uuid:{uuid.uuid4()}'
            "</a:MessageID><a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
            f"<a:RelatesTo>{relates_to}</a:RelatesTo></s:Header><s:Body>{body}</s:Body></s:Envelope>")
