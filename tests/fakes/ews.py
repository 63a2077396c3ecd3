"""A stateful fake Exchange Web Services endpoint, served over real HTTP on 127.0.0.1.

Built from the request and response shapes in Microsoft's EWS reference
(https://learn.microsoft.com/exchange/client-developer/web-service-reference/
ews-operations-in-exchange): GetFolder, FindFolder, FindItem (with CalendarView and
Restriction), SyncFolderItems, GetItem, CreateItem, UpdateItem, DeleteItem, and SOAP
Autodiscover GetUserSettings (https://learn.microsoft.com/exchange/client-developer/
web-service-reference/getusersettings-operation-soap). Errors: HTTP 401 (with the
lock-out text Exchange sends for a locked account) and the ErrorServerBusy SOAP fault
with its BackOffMilliseconds hint (https://learn.microsoft.com/exchange/
client-developer/exchange-web-services/ews-throttling-in-exchange).

Exchange Impersonation (https://learn.microsoft.com/exchange/client-developer/
exchange-web-services/impersonation-and-ews-in-exchange): a request whose SOAP header
has `t:ExchangeImpersonation/t:ConnectingSID/t:PrimarySmtpAddress` (or `t:SmtpAddress`)
acts on that mailbox (`add_mailbox`), if the account signed in holds the
ApplicationImpersonation role (`grant_impersonation`); else Exchange's SOAP faults
ErrorImpersonateUserDenied ("The account does not have permission to impersonate the
requested user.") or, for an address without a mailbox, ErrorNonExistentMailbox
(https://learn.microsoft.com/exchange/client-developer/web-service-reference/responsecode).

Authentication: Basic (the default) or, with `FakeExchange(auth="ntlm")`, NTLM as
IIS does it (MS-NLMP, https://learn.microsoft.com/openspecs/windows_protocols/ms-nlmp/):
an unauthenticated request gets 401 `WWW-Authenticate: NTLM`, a NEGOTIATE (type 1)
message gets 401 with a CHALLENGE (type 2), and an AUTHENTICATE (type 3) message on
the *same* connection signs that connection in, so its later requests need no header.
The server speaks HTTP/1.1 with keep-alive for that. Every Basic header and every
NTLM type 3 message is one sign-in attempt, recorded in `FakeExchange.attempts`.

Simplifications, on purpose: NTLM checks the user name, not the password (see
`_ntlm_authenticate`); every item answer carries the same full set of properties
whatever shape was asked for; recurring items store their occurrences explicitly
(exceptions are occurrences with another time).
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import os
import struct
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from xml.sax.saxutils import escape

from lxml import etree

S = "http://schemas.xmlsoap.org/soap/envelope/"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
E = "http://schemas.microsoft.com/exchange/services/2006/errors"
A = "http://schemas.microsoft.com/exchange/2010/Autodiscover"
NS = {"s": S, "m": M, "t": T, "a": A}
ROOT_ID = "AAMkRoot"
LOCKED_TEXT = "The referenced account is currently locked out and may not be logged on to."

# MS-NLMP 2.2.1: every message starts with this signature and a 32-bit message type.
NTLM_SIGNATURE = b"NTLMSSP\x00"
NTLM_NEGOTIATE, NTLM_CHALLENGE, NTLM_AUTHENTICATE = 1, 2, 3
# MS-NLMP 2.2.2.5 NEGOTIATE flags.
NTLMSSP_NEGOTIATE_UNICODE = 0x00000001
NTLMSSP_REQUEST_TARGET = 0x00000004
NTLMSSP_NEGOTIATE_SIGN = 0x00000010
NTLMSSP_NEGOTIATE_SEAL = 0x00000020
NTLMSSP_NEGOTIATE_NTLM = 0x00000200
NTLMSSP_NEGOTIATE_ALWAYS_SIGN = 0x00008000
NTLMSSP_TARGET_TYPE_DOMAIN = 0x00010000
NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY = 0x00080000
NTLMSSP_NEGOTIATE_TARGET_INFO = 0x00800000
NTLMSSP_NEGOTIATE_VERSION = 0x02000000
NTLMSSP_NEGOTIATE_128 = 0x20000000
NTLMSSP_NEGOTIATE_KEY_EXCH = 0x40000000
NTLMSSP_NEGOTIATE_56 = 0x80000000
# What this server would agree to of what a client asks for.
NTLM_SUPPORTED_FLAGS = (
    NTLMSSP_NEGOTIATE_UNICODE
    | NTLMSSP_REQUEST_TARGET
    | NTLMSSP_NEGOTIATE_SIGN
    | NTLMSSP_NEGOTIATE_SEAL
    | NTLMSSP_NEGOTIATE_NTLM
    | NTLMSSP_NEGOTIATE_ALWAYS_SIGN
    | NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY
    | NTLMSSP_NEGOTIATE_VERSION
    | NTLMSSP_NEGOTIATE_128
    | NTLMSSP_NEGOTIATE_KEY_EXCH
    | NTLMSSP_NEGOTIATE_56
)
# MS-NLMP 2.2.2.1 AV_PAIR ids.
MSV_AV_EOL = 0
MSV_AV_NB_COMPUTER_NAME = 1
MSV_AV_NB_DOMAIN_NAME = 2
MSV_AV_DNS_COMPUTER_NAME = 3
MSV_AV_DNS_DOMAIN_NAME = 4
MSV_AV_TIMESTAMP = 7
# Windows FILETIME: 100-ns intervals since 1601-01-01 UTC.
FILETIME_EPOCH = dt.datetime(1601, 1, 1, tzinfo=dt.UTC)


def _ews_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


@dataclass
class Occurrence:
    original_start: dt.datetime
    start: dt.datetime
    end: dt.datetime


@dataclass
class FakeItem:
    id: str
    folder_id: str
    subject: str
    start: dt.datetime
    end: dt.datetime
    status: str = "Busy"  # LegacyFreeBusyStatus
    all_day: bool = False
    uid: str = ""
    body: str = ""
    location: str = ""
    extended: dict[tuple[str, str], str] = field(default_factory=dict)  # (set, name) -> value
    occurrences: list[Occurrence] | None = None  # None: a single item
    change_key: str = ""
    created_seq: int = 0
    modified_seq: int = 0


@dataclass
class SignInAttempt:
    """One set of credentials presented: a Basic header or an NTLM type 3 message."""

    scheme: str  # "Basic" or "NTLM"
    username: str  # as sent: "user", "DOMAIN\\user" or "user@domain"
    accepted: bool


@dataclass
class Connection:
    """What the server remembers about one TCP connection: NTLM signs in a connection,
    not a request (MS-NLMP 1.3.1)."""

    challenge: bytes = b""  # the server challenge sent on it, awaiting a type 3
    user: str = ""  # who signed it in


@dataclass
class FakeFolder:
    id: str
    name: str
    folder_class: str = "IPF.Appointment"
    distinguished: str = ""


@dataclass
class RecordedRequest:
    method: str
    host: str
    path: str
    operation: str
    authorization: str
    impersonating: str = ""  # the ExchangeImpersonation header's address, if any


class FakeExchange:
    """One mailbox behind one EWS endpoint (and its autodiscover service); for
    impersonation, other mailboxes of the same server (each a FakeExchange whose
    folders and items the endpoint's requests act on)."""

    def __init__(
        self,
        email: str = "ada@contoso.test",
        password: str = "s3cret!",  # noqa: S107 - a test mailbox
        *,
        auth: Literal["basic", "ntlm"] = "basic",
    ) -> None:
        self.email = email
        self.auth = auth
        self.password = password
        self.usernames = {email.lower(), f"contoso\\{email.split('@')[0]}".lower()}
        self.locked = False
        self.folders: dict[str, FakeFolder] = {}
        self.items: dict[str, FakeItem] = {}
        self.tombstones: list[tuple[str, str, int, int]] = []  # folder, id, created, deleted
        self.requests: list[RecordedRequest] = []
        self.busy_answers: list[int] = []  # BackOffMilliseconds of the next answers
        self.auth_schemes = "NTLM" if auth == "ntlm" else 'Basic realm="contoso.test"'
        self.attempts: list[SignInAttempt] = []
        self.ews_url = ""  # set once served: what autodiscover hands out
        self._seq = itertools.count(1)
        self.seq = 0
        self.lock = threading.RLock()
        self.mailboxes: dict[str, FakeExchange] = {}  # other mailboxes, by address
        self.impersonators: set[str] = set()  # who holds ApplicationImpersonation
        self.calendar = self.add_folder("Calendar", distinguished="calendar")
        self.add_folder("Inbox", folder_class="IPF.Note", distinguished="inbox")

    # -- state, for tests -------------------------------------------------------------

    def _next(self) -> int:
        self.seq = next(self._seq)
        return self.seq

    def add_folder(
        self, name: str, *, folder_class: str = "IPF.Appointment", distinguished: str = ""
    ) -> FakeFolder:
        folder = FakeFolder(f"AAMkF{uuid.uuid4().hex}", name, folder_class, distinguished)
        self.folders[folder.id] = folder
        return folder

    def add_item(self, folder_id: str | None = None, **fields: object) -> FakeItem:
        with self.lock:
            seq = self._next()
            item = FakeItem(
                id=f"AAMkI{uuid.uuid4().hex}",
                folder_id=folder_id or self.calendar.id,
                change_key=f"CK{seq}",
                created_seq=seq,
                modified_seq=seq,
                **fields,  # type: ignore[arg-type]
            )
            item.uid = item.uid or f"{uuid.uuid4().hex}@contoso.test"
            self.items[item.id] = item
            return item

    def touch(self, item: FakeItem) -> None:
        with self.lock:
            seq = self._next()
            item.modified_seq = seq
            item.change_key = f"CK{seq}"

    def remove(self, item_id: str) -> bool:
        with self.lock:
            item = self.items.pop(item_id, None)
            if item is None:
                return False
            self.tombstones.append((item.folder_id, item.id, item.created_seq, self._next()))
            return True

    def add_mailbox(self, email: str) -> FakeExchange:
        """Another mailbox on this server, reachable by impersonation; add items to it
        through the returned FakeExchange."""
        with self.lock:
            mailbox = FakeExchange(email)
            self.mailboxes[email.lower()] = mailbox
            return mailbox

    def grant_impersonation(self, username: str) -> None:
        """New-ManagementRoleAssignment -Role ApplicationImpersonation -User `username`
        (the name as it signs in: "user@domain" or "DOMAIN\\user")."""
        with self.lock:
            self.impersonators.add(username.lower())

    def operations(self) -> list[str]:
        return [r.operation for r in self.requests if r.operation]

    # -- HTTP ---------------------------------------------------------------------------

    def handle(
        self,
        method: str,
        host: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        connection: Connection | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one request. `connection` is the state of the TCP connection it came
        on (NTLM needs it); without one, every request is a connection of its own."""
        connection = connection if connection is not None else Connection()
        operation = ""
        tree = None
        if body:
            try:
                tree = etree.fromstring(body)
                operation = etree.QName(tree.find("s:Body", NS)[0]).localname
            except (etree.XMLSyntaxError, TypeError, IndexError):
                tree = None
        authorization = headers.get("authorization", "")
        impersonating = _impersonated(tree)
        with self.lock:
            self.requests.append(
                RecordedRequest(method, host, path, operation, authorization, impersonating)
            )
        if path.lower() not in ("/ews/exchange.asmx", "/autodiscover/autodiscover.svc"):
            return 404, {"Content-Type": "text/html"}, b"<html><body>Not found</body></html>"
        if self.auth == "ntlm":
            refused = self._ntlm(authorization, connection)
            if refused is not None:
                return refused
        else:
            if not authorization:
                return 401, {"WWW-Authenticate": self.auth_schemes}, b""
            if self.locked:
                self._attempt("Basic", _basic_user(authorization), accepted=False)
                return 401, {"WWW-Authenticate": self.auth_schemes}, LOCKED_TEXT.encode()
            if not self._authorized(authorization):
                self._attempt("Basic", _basic_user(authorization), accepted=False)
                return 401, {"WWW-Authenticate": self.auth_schemes}, b"401 - Unauthorized"
            self._attempt("Basic", _basic_user(authorization), accepted=True)
        if tree is None or method != "POST":
            return 400, {"Content-Type": "text/plain"}, b"Bad request"
        with self.lock:
            if self.busy_answers:
                return 500, _xml_headers(), _busy_fault(self.busy_answers.pop(0))
            if path.lower() == "/autodiscover/autodiscover.svc":
                return 200, _xml_headers(), self._autodiscover(tree)
            target: FakeExchange = self
            if impersonating:
                signed_in = connection.user if self.auth == "ntlm" else _basic_user(authorization)
                found = self._impersonate(signed_in, impersonating)
                if isinstance(found, bytes):
                    return 500, _xml_headers(), found
                target = found
            handler = getattr(target, f"_op_{operation}", None)
            if handler is None:
                return (
                    500,
                    _xml_headers(),
                    _fault("ErrorInvalidRequest", f"{operation} is not faked"),
                )
            return 200, _xml_headers(), _envelope(handler(tree.find("s:Body", NS)[0]))

    def _impersonate(self, signed_in: str, address: str) -> FakeExchange | bytes:
        """The mailbox a request impersonating `address` acts on, or the SOAP fault
        Exchange answers instead (HTTP 500)."""
        if signed_in.lower() not in self.impersonators:
            return _fault(
                "ErrorImpersonateUserDenied",
                "The account does not have permission to impersonate the requested user.",
            )
        if address.lower() == self.email.lower():
            return self
        mailbox = self.mailboxes.get(address.lower())
        if mailbox is None:
            return _fault(
                "ErrorNonExistentMailbox",
                "The SMTP address has no mailbox associated with it.",
                f'<t:MessageXml xmlns:t="{T}"><t:Value Name="SmtpAddress">{escape(address)}'
                "</t:Value></t:MessageXml>",
            )
        return mailbox

    def _attempt(self, scheme: str, username: str, *, accepted: bool) -> None:
        with self.lock:
            self.attempts.append(SignInAttempt(scheme, username, accepted))

    def _authorized(self, authorization: str) -> bool:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        username, _, password = base64.b64decode(value).decode().partition(":")
        return username.lower() in self.usernames and password == self.password

    # -- NTLM ---------------------------------------------------------------------------

    def _ntlm(
        self, authorization: str, connection: Connection
    ) -> tuple[int, dict[str, str], bytes] | None:
        """None when the request may go on (the connection is signed in, or this
        request's type 3 message signs it in), else the 401 to send."""
        challenge_me = {"WWW-Authenticate": "NTLM"}
        scheme, _, value = authorization.partition(" ")
        if not authorization:
            return None if connection.user else (401, challenge_me, b"")
        try:
            message = base64.b64decode(value, validate=True) if scheme.lower() == "ntlm" else b""
        except ValueError:
            message = b""
        kind = _ntlm_type(message)
        if kind == NTLM_NEGOTIATE:
            # A new handshake starts over, whoever had signed the connection in.
            connection.user = ""
            connection.challenge = os.urandom(8)
            (flags,) = struct.unpack_from("<I", message, 12)
            type2 = ntlm_challenge(connection.challenge, flags)
            return 401, {"WWW-Authenticate": f"NTLM {base64.b64encode(type2).decode()}"}, b""
        if kind == NTLM_AUTHENTICATE and connection.challenge:
            connection.challenge = b""  # one type 3 per challenge
            username = self._ntlm_authenticate(message)
            accepted = not self.locked and username.lower() in self.usernames
            self._attempt("NTLM", username, accepted=accepted)
            if self.locked:
                return 401, challenge_me, LOCKED_TEXT.encode()
            if not accepted:
                return 401, challenge_me, b"401 - Unauthorized"
            connection.user = username
            return None
        # Basic, a type 3 without a challenge first, or garbage: start again.
        connection.user, connection.challenge = "", b""
        return 401, challenge_me, b"401 - Unauthorized"

    def _ntlm_authenticate(self, message: bytes) -> str:
        """The user an AUTHENTICATE message (MS-NLMP 2.2.1.3) names: "DOMAIN\\user", or
        "user" when the domain is empty.

        The NTLMv2 response itself is NOT verified: that needs MD4 (NTOWFv2), which
        this Python's OpenSSL no longer offers. So under NTLM the fake checks who signs
        in, not their password; a wrong password is tested under Basic."""
        (flags,) = struct.unpack_from("<I", message, 60)
        encoding = "utf-16-le" if flags & NTLMSSP_NEGOTIATE_UNICODE else "cp437"
        domain = _ntlm_field(message, 28).decode(encoding)
        user = _ntlm_field(message, 36).decode(encoding)
        return f"{domain}\\{user}" if domain else user

    # -- autodiscover ---------------------------------------------------------------

    def _autodiscover(self, tree: etree._Element) -> bytes:
        mailbox = tree.findtext(".//a:Mailbox", namespaces=NS) or ""
        if mailbox.lower() != self.email.lower():
            user = "<ErrorCode>InvalidUser</ErrorCode><ErrorMessage>Invalid user.</ErrorMessage>"
        else:
            user = (
                "<ErrorCode>NoError</ErrorCode><ErrorMessage>No error.</ErrorMessage>"
                '<RedirectTarget i:nil="true"/><UserSettingErrors/><UserSettings>'
                f'<UserSetting i:type="StringSetting"><Name>AutoDiscoverSMTPAddress</Name><Value>{escape(self.email)}</Value></UserSetting>'  # noqa: E501 - SOAP as documented
                f'<UserSetting i:type="StringSetting"><Name>ExternalEwsUrl</Name><Value>{escape(self.ews_url)}</Value></UserSetting>'  # noqa: E501 - SOAP as documented
                '<UserSetting i:type="StringSetting"><Name>EwsSupportedSchemas</Name><Value>Exchange2007, Exchange2007_SP1, Exchange2010, Exchange2010_SP1, Exchange2010_SP2, Exchange2013, Exchange2013_SP1</Value></UserSetting>'  # noqa: E501 - SOAP as documented
                "</UserSettings>"
            )
        return (
            f'<s:Envelope xmlns:s="{S}" xmlns:a="http://www.w3.org/2005/08/addressing"><s:Header>'
            '<a:Action s:mustUnderstand="1">http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettingsResponse</a:Action>'
            f'<h:ServerVersionInfo xmlns:h="{A}" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">'
            "<h:MajorVersion>15</h:MajorVersion><h:MinorVersion>1</h:MinorVersion>"
            "<h:MajorBuildNumber>2507</h:MajorBuildNumber><h:MinorBuildNumber>6</h:MinorBuildNumber>"
            "<h:Version>Exchange2015</h:Version></h:ServerVersionInfo></s:Header><s:Body>"
            f'<GetUserSettingsResponseMessage xmlns="{A}"><Response xmlns:i="http://www.w3.org/2001/XMLSchema-instance">'
            "<ErrorCode>NoError</ErrorCode><ErrorMessage/><UserResponses><UserResponse>"
            f"{user}</UserResponse></UserResponses></Response></GetUserSettingsResponseMessage>"
            "</s:Body></s:Envelope>"
        ).encode()

    # -- folders ----------------------------------------------------------------------

    def _folder_xml(self, folder: FakeFolder) -> str:
        tag = "CalendarFolder" if folder.folder_class == "IPF.Appointment" else "Folder"
        return (
            f'<t:{tag}><t:FolderId Id="{folder.id}" ChangeKey="FCK"/>'
            f'<t:ParentFolderId Id="{ROOT_ID}" ChangeKey="FCK"/>'
            f"<t:FolderClass>{folder.folder_class}</t:FolderClass>"
            f"<t:DisplayName>{escape(folder.name)}</t:DisplayName>"
            f"<t:TotalCount>0</t:TotalCount><t:ChildFolderCount>0</t:ChildFolderCount></t:{tag}>"
        )

    def _root_xml(self) -> str:
        return (
            f'<t:Folder><t:FolderId Id="{ROOT_ID}" ChangeKey="FCK"/>'
            f"<t:FolderClass>IPF.Note</t:FolderClass><t:DisplayName>Top of Information Store</t:DisplayName>"  # noqa: E501 - SOAP as documented
            f"<t:TotalCount>0</t:TotalCount><t:ChildFolderCount>{len(self.folders)}</t:ChildFolderCount></t:Folder>"
        )

    def _resolve_folder(self, elem: etree._Element) -> FakeFolder | str | None:
        """A FolderId or DistinguishedFolderId: a folder, "root", or None (unknown)."""
        name = etree.QName(elem).localname
        key = elem.get("Id", "")
        if name == "DistinguishedFolderId":
            if key in ("root", "msgfolderroot"):
                return "root"
            return next((f for f in self.folders.values() if f.distinguished == key), None)
        if key == ROOT_ID:
            return "root"
        return self.folders.get(key)

    def _op_GetFolder(self, request: etree._Element) -> str:
        parts = []
        for elem in request.find("m:FolderIds", NS):
            folder = self._resolve_folder(elem)
            if folder is None:
                parts.append(
                    _error_message(
                        "GetFolder",
                        "ErrorFolderNotFound",
                        "The specified folder could not be found in the store.",
                    )
                )
            else:
                body = self._root_xml() if folder == "root" else self._folder_xml(folder)  # type: ignore[arg-type]
                parts.append(_ok("GetFolder", f"<m:Folders>{body}</m:Folders>"))
        return _response("GetFolder", parts)

    def _op_FindFolder(self, request: etree._Element) -> str:
        folders = "".join(self._folder_xml(f) for f in self.folders.values())
        count = len(self.folders)
        body = (
            f'<m:RootFolder TotalItemsInView="{count}" IncludesLastItemInRange="true">'
            f"<t:Folders>{folders}</t:Folders></m:RootFolder>"
        )
        parents = request.find("m:ParentFolderIds", NS)
        return _response("FindFolder", [_ok("FindFolder", body) for _ in parents])

    # -- items ------------------------------------------------------------------------

    def _item_xml(
        self, item: FakeItem, occurrence: Occurrence | None = None, index: int = 0
    ) -> str:
        if occurrence is None:
            item_id, start, end = item.id, item.start, item.end
            kind = "Single" if item.occurrences is None else "RecurringMaster"
            original = ""
        else:
            item_id, start, end = f"{item.id}.occ{index}", occurrence.start, occurrence.end
            moved = (occurrence.start, occurrence.end) != (
                occurrence.original_start,
                occurrence.original_start + (item.end - item.start),
            )
            kind = "Exception" if moved else "Occurrence"
            original = f"<t:OriginalStart>{_ews_time(occurrence.original_start)}</t:OriginalStart>"
        extended = "".join(
            f'<t:ExtendedProperty><t:ExtendedFieldURI PropertySetId="{set_id}" '
            f'PropertyName="{name}" PropertyType="String"/><t:Value>{escape(value)}</t:Value>'
            "</t:ExtendedProperty>"
            for (set_id, name), value in item.extended.items()
        )
        return (
            f'<t:CalendarItem><t:ItemId Id="{item_id}" ChangeKey="{item.change_key}"/>'
            f'<t:ParentFolderId Id="{item.folder_id}" ChangeKey="FCK"/>'
            f"<t:ItemClass>IPM.Appointment</t:ItemClass><t:Subject>{escape(item.subject)}</t:Subject>"
            f"{extended}<t:UID>{escape(item.uid)}</t:UID>"
            f"<t:Start>{_ews_time(start)}</t:Start><t:End>{_ews_time(end)}</t:End>{original}"
            f"<t:IsAllDayEvent>{str(item.all_day).lower()}</t:IsAllDayEvent>"
            f"<t:LegacyFreeBusyStatus>{item.status}</t:LegacyFreeBusyStatus>"
            f"<t:Location>{escape(item.location)}</t:Location>"
            f"<t:CalendarItemType>{kind}</t:CalendarItemType>"
            '<t:StartTimeZone Id="UTC" Name="(UTC) Coordinated Universal Time"/>'
            '<t:EndTimeZone Id="UTC" Name="(UTC) Coordinated Universal Time"/>'
            "</t:CalendarItem>"
        )

    def _in_folder(self, request: etree._Element) -> list[FakeItem]:
        parents = request.find("m:ParentFolderIds", NS)
        wanted = {getattr(self._resolve_folder(elem), "id", "") for elem in parents}
        return [i for i in self.items.values() if i.folder_id in wanted]

    def _op_FindItem(self, request: etree._Element) -> str:
        items = self._in_folder(request)
        for condition in request.iterfind(".//t:IsEqualTo", NS):
            uri = condition.find("t:ExtendedFieldURI", NS)
            constant = condition.find("t:FieldURIOrConstant/t:Constant", NS)
            if uri is None or constant is None:
                continue
            key = (uri.get("PropertySetId", ""), uri.get("PropertyName", ""))
            items = [i for i in items if i.extended.get(key) == constant.get("Value")]
        view = request.find("m:CalendarView", NS)
        parts: list[str] = []
        if view is None:
            parts = [self._item_xml(i) for i in items]
        else:
            start, end = (
                _parse_time(view.get("StartDate", "")),
                _parse_time(view.get("EndDate", "")),
            )
            for item in sorted(items, key=lambda i: i.start):
                if item.occurrences is None:
                    if item.start < end and item.end > start:
                        parts.append(self._item_xml(item))
                    continue
                for index, occurrence in enumerate(item.occurrences):
                    if occurrence.start < end and occurrence.end > start:
                        parts.append(self._item_xml(item, occurrence, index))
        body = (
            f'<m:RootFolder TotalItemsInView="{len(parts)}" IncludesLastItemInRange="true">'
            f"<t:Items>{''.join(parts)}</t:Items></m:RootFolder>"
        )
        return _response("FindItem", [_ok("FindItem", body)])

    def _op_SyncFolderItems(self, request: etree._Element) -> str:
        folder = self._resolve_folder(request.find("m:SyncFolderId", NS)[0])
        if not isinstance(folder, FakeFolder):
            return _response(
                "SyncFolderItems",
                [_error_message("SyncFolderItems", "ErrorFolderNotFound", "Folder not found.")],
            )
        token = request.findtext("m:SyncState", default="", namespaces=NS)
        since = 0
        if token:
            try:
                folder_id, _, seq = base64.b64decode(token, validate=True).decode().partition(":")
                since = int(seq)
                if folder_id != folder.id:
                    raise ValueError(folder_id)
            except ValueError:
                return _response(
                    "SyncFolderItems",
                    [
                        _error_message(
                            "SyncFolderItems",
                            "ErrorInvalidSyncStateData",
                            "Synchronization state data is corrupt or otherwise invalid.",
                        )
                    ],
                )
        changes = []
        for item in sorted(self.items.values(), key=lambda i: i.modified_seq):
            if item.folder_id != folder.id or item.modified_seq <= since:
                continue
            tag = "Create" if item.created_seq > since else "Update"
            changes.append(f"<t:{tag}>{self._item_xml(item)}</t:{tag}>")
        for folder_id, item_id, created, deleted in self.tombstones:
            if folder_id == folder.id and deleted > since >= created:
                changes.append(f'<t:Delete><t:ItemId Id="{item_id}" ChangeKey="x"/></t:Delete>')
        state = base64.b64encode(f"{folder.id}:{self.seq}".encode()).decode()
        body = (
            f"<m:SyncState>{state}</m:SyncState>"
            "<m:IncludesLastItemInRange>true</m:IncludesLastItemInRange>"
            f"<m:Changes>{''.join(changes)}</m:Changes>"
        )
        return _response("SyncFolderItems", [_ok("SyncFolderItems", body)])

    def _op_GetItem(self, request: etree._Element) -> str:
        parts = []
        for elem in request.find("m:ItemIds", NS):
            # An occurrence's ItemId (as a CalendarView hands out) is fetchable too.
            master_id, _, index = elem.get("Id", "").partition(".occ")
            item = self.items.get(master_id)
            if item is None or (
                index and (item.occurrences is None or int(index) >= len(item.occurrences))
            ):
                parts.append(
                    _error_message(
                        "GetItem",
                        "ErrorItemNotFound",
                        "The specified object was not found in the store.",
                    )
                )
            elif index:
                occurrence = item.occurrences[int(index)]  # type: ignore[index]
                parts.append(
                    _ok(
                        "GetItem",
                        f"<m:Items>{self._item_xml(item, occurrence, int(index))}</m:Items>",
                    )
                )
            else:
                parts.append(_ok("GetItem", f"<m:Items>{self._item_xml(item)}</m:Items>"))
        return _response("GetItem", parts)

    def _op_CreateItem(self, request: etree._Element) -> str:
        target = request.find("m:SavedItemFolderId", NS)
        folder = self._resolve_folder(target[0]) if target is not None else self.calendar
        parts = []
        for elem in request.find("m:Items", NS):
            fields = _calendar_fields(elem)
            item = self.add_item(getattr(folder, "id", self.calendar.id), **fields)
            parts.append(
                _ok(
                    "CreateItem",
                    f'<m:Items><t:CalendarItem><t:ItemId Id="{item.id}" ChangeKey="{item.change_key}"/></t:CalendarItem></m:Items>',  # noqa: E501 - SOAP as documented
                )
            )
        return _response("CreateItem", parts)

    def _op_UpdateItem(self, request: etree._Element) -> str:
        parts = []
        for change in request.find("m:ItemChanges", NS):
            item = self.items.get(change.find("t:ItemId", NS).get("Id", ""))
            if item is None:
                parts.append(
                    _error_message(
                        "UpdateItem",
                        "ErrorItemNotFound",
                        "The specified object was not found in the store.",
                    )
                )
                continue
            for update in change.find("t:Updates", NS):
                if etree.QName(update).localname == "SetItemField":
                    value = update.find("t:CalendarItem", NS)
                    for key, new in _calendar_fields(value).items():
                        if key == "extended":
                            item.extended.update(new)  # type: ignore[arg-type]
                        else:
                            setattr(item, key, new)
            self.touch(item)
            parts.append(
                _ok(
                    "UpdateItem",
                    f'<m:Items><t:CalendarItem><t:ItemId Id="{item.id}" ChangeKey="{item.change_key}"/></t:CalendarItem></m:Items><m:ConflictResults><t:Count>0</t:Count></m:ConflictResults>',  # noqa: E501 - SOAP as documented
                )
            )
        return _response("UpdateItem", parts)

    def _op_DeleteItem(self, request: etree._Element) -> str:
        parts = []
        for elem in request.find("m:ItemIds", NS):
            if self.remove(elem.get("Id", "")):
                parts.append(_ok("DeleteItem", ""))
            else:
                parts.append(
                    _error_message(
                        "DeleteItem",
                        "ErrorItemNotFound",
                        "The specified object was not found in the store.",
                    )
                )
        return _response("DeleteItem", parts)


def _impersonated(tree: etree._Element | None) -> str:
    """The address an ExchangeImpersonation SOAP header names, or ""."""
    if tree is None:
        return ""
    sid = tree.find("s:Header/t:ExchangeImpersonation/t:ConnectingSID", NS)
    if sid is None:
        return ""
    for name in ("PrimarySmtpAddress", "SmtpAddress"):
        address = sid.findtext(f"t:{name}", default="", namespaces=NS).strip()
        if address:
            return address
    return ""


def _calendar_fields(elem: etree._Element) -> dict[str, object]:
    fields: dict[str, object] = {}
    simple = {
        "Subject": "subject",
        "Location": "location",
        "UID": "uid",
        "LegacyFreeBusyStatus": "status",
    }
    for child in elem:
        name = etree.QName(child).localname
        if name in simple:
            fields[simple[name]] = child.text or ""
        elif name == "Body":
            fields["body"] = child.text or ""
        elif name in ("Start", "End"):
            fields[name.lower()] = _parse_time(child.text or "")
        elif name == "IsAllDayEvent":
            fields["all_day"] = child.text == "true"
        elif name == "ExtendedProperty":
            uri = child.find("t:ExtendedFieldURI", NS)
            key = (uri.get("PropertySetId", ""), uri.get("PropertyName", ""))
            fields.setdefault("extended", {})[key] = child.findtext(
                "t:Value", default="", namespaces=NS
            )  # type: ignore[index]
    return fields


def ntlm_challenge(server_challenge: bytes, client_flags: int) -> bytes:
    """A CHALLENGE message (MS-NLMP 2.2.1.2) from the CONTOSO domain's server EXCH01."""
    target_name = "CONTOSO".encode("utf-16-le")
    filetime = (dt.datetime.now(dt.UTC) - FILETIME_EPOCH) // dt.timedelta(microseconds=1) * 10
    target_info = b"".join(
        _av_pair(av_id, value)
        for av_id, value in (
            (MSV_AV_NB_DOMAIN_NAME, "CONTOSO".encode("utf-16-le")),
            (MSV_AV_NB_COMPUTER_NAME, "EXCH01".encode("utf-16-le")),
            (MSV_AV_DNS_DOMAIN_NAME, "contoso.test".encode("utf-16-le")),
            (MSV_AV_DNS_COMPUTER_NAME, "exch01.contoso.test".encode("utf-16-le")),
            (MSV_AV_TIMESTAMP, struct.pack("<Q", filetime)),
            (MSV_AV_EOL, b""),
        )
    )
    flags = (
        (client_flags & NTLM_SUPPORTED_FLAGS)
        | NTLMSSP_NEGOTIATE_UNICODE
        | NTLMSSP_NEGOTIATE_NTLM
        | NTLMSSP_TARGET_TYPE_DOMAIN
        | NTLMSSP_NEGOTIATE_TARGET_INFO
    )
    if client_flags & NTLMSSP_REQUEST_TARGET:
        flags |= NTLMSSP_REQUEST_TARGET
    # Fixed part: signature, type, TargetNameFields, flags, challenge, reserved,
    # TargetInfoFields, Version (Windows Server 2016: 10.0 build 14393, NTLM rev. 15).
    header_length = 56
    header = struct.pack(
        "<8sIHHIIQ8sHHI",
        NTLM_SIGNATURE,
        NTLM_CHALLENGE,
        len(target_name),
        len(target_name),
        header_length,
        flags,
        struct.unpack("<Q", server_challenge)[0],
        b"\x00" * 8,
        len(target_info),
        len(target_info),
        header_length + len(target_name),
    )
    version = struct.pack("<BBH3xB", 10, 0, 14393, 15)
    return header + version + target_name + target_info


def _av_pair(av_id: int, value: bytes) -> bytes:
    return struct.pack("<HH", av_id, len(value)) + value


def _ntlm_type(message: bytes) -> int:
    if len(message) < 12 or not message.startswith(NTLM_SIGNATURE):
        return 0
    if message[8:12] == struct.pack("<I", NTLM_NEGOTIATE) and len(message) >= 16:
        return NTLM_NEGOTIATE
    if message[8:12] == struct.pack("<I", NTLM_AUTHENTICATE) and len(message) >= 64:
        return NTLM_AUTHENTICATE
    return 0


def _ntlm_field(message: bytes, at: int) -> bytes:
    """The payload a (Len, MaxLen, BufferOffset) field descriptor at `at` points to."""
    length, _max_length, offset = struct.unpack_from("<HHI", message, at)
    return message[offset : offset + length]


def _basic_user(authorization: str) -> str:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        return base64.b64decode(value).decode().partition(":")[0]
    except ValueError:
        return ""


def _xml_headers() -> dict[str, str]:
    return {"Content-Type": "text/xml; charset=utf-8"}


def _ok(operation: str, body: str) -> str:
    return (
        f'<m:{operation}ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError'
        f"</m:ResponseCode>{body}</m:{operation}ResponseMessage>"
    )


def _error_message(operation: str, code: str, text: str) -> str:
    # Exchange keeps SyncFolderItems' own elements, empty, in an error answer.
    tail = (
        "<m:SyncState/><m:IncludesLastItemInRange>true</m:IncludesLastItemInRange>"
        if operation == "SyncFolderItems"
        else ""
    )
    return (
        f'<m:{operation}ResponseMessage ResponseClass="Error"><m:MessageText>{escape(text)}'
        f"</m:MessageText><m:ResponseCode>{code}</m:ResponseCode>"
        f"<m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>{tail}</m:{operation}ResponseMessage>"
    )


def _response(operation: str, messages: list[str]) -> str:
    return (
        f'<m:{operation}Response xmlns:m="{M}" xmlns:t="{T}"><m:ResponseMessages>'
        f"{''.join(messages)}</m:ResponseMessages></m:{operation}Response>"
    )


def _envelope(body: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{S}"><s:Header>'
        f'<h:ServerVersionInfo MajorVersion="15" MinorVersion="1" MajorBuildNumber="2507" '
        f'MinorBuildNumber="6" Version="V2017_07_11" xmlns:h="{T}" xmlns="{T}"/>'
        f"</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _fault(code: str, text: str, extra: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{S}"><s:Body><s:Fault>'
        f'<faultcode xmlns:a="{T}">a:{code}</faultcode><faultstring xml:lang="en-US">'
        f'{escape(text)}</faultstring><detail><e:ResponseCode xmlns:e="{E}">{code}</e:ResponseCode>'
        f'<e:Message xmlns:e="{E}">{escape(text)}</e:Message>{extra}</detail></s:Fault></s:Body></s:Envelope>'  # noqa: E501 - SOAP as documented
    ).encode()


def _busy_fault(back_off_ms: int) -> bytes:
    # The shape Exchange uses when a throttling budget is exhausted: a SOAP fault whose
    # MessageXml (in the *types* namespace) names BackOffMilliseconds.
    extra = f'<t:MessageXml xmlns:t="{T}"><t:Value Name="BackOffMilliseconds">{back_off_ms}</t:Value></t:MessageXml>'  # noqa: E501 - SOAP as documented
    return _fault(
        "ErrorServerBusy",
        "The server cannot service this request right now. Try again later.",
        extra,
    )


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1, so a client keeps its connection open: NTLM signs in a connection. Every
    # answer has a Content-Length, which keep-alive needs.
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection_state = Connection()  # one handler per TCP connection

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {key.lower(): value for key, value in self.headers.items()}
        status, out_headers, payload = self.server.exchange.handle(
            self.command,
            headers.get("host", ""),
            self.path.split("?")[0],
            headers,
            body,
            self.connection_state,
        )
        self.send_response(status)
        for key, value in out_headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_GET = do_HEAD = _serve

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    exchange: FakeExchange


@dataclass
class ServedExchange:
    exchange: FakeExchange
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ews_url(self) -> str:
        return f"{self.base}/EWS/Exchange.asmx"


def serve(exchange: FakeExchange) -> Iterator[ServedExchange]:
    """Serve `exchange` on a free loopback port for as long as the generator lives."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.exchange = exchange
    port = int(server.server_address[1])
    exchange.ews_url = exchange.ews_url or f"http://127.0.0.1:{port}/EWS/Exchange.asmx"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ServedExchange(exchange, port)
    finally:
        server.shutdown()
        server.server_close()
