"""Reads for calendar connections."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet

from apps.accounts.models import CalendarService, Program, User
from apps.calendars.models import Calendar, CalendarAccount, OutboundAllowRule
from apps.calendars.providers.http import OutboundPolicy, outbound_policy_from_settings

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ConnectAllowance:
    """Which services a person may connect, and how many more accounts."""

    services: tuple[str, ...]
    limit: int
    used: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def allows(self, service: str) -> bool:
        return service in self.services and self.remaining > 0


def connect_allowance(*, user: User) -> ConnectAllowance:
    """The union of the services the person's programmes allow, up to the largest
    account limit among them. Nobody outside a programme connects anything."""
    programs = Program.objects.filter(memberships__user=user, is_active=True).distinct()
    allowed: set[str] = set()
    limit = 0
    for services, account_limit in programs.values_list(
        "allowed_calendar_services", "calendar_account_limit"
    ):
        allowed.update(services or [])
        limit = max(limit, account_limit)
    used = CalendarAccount.objects.filter(owner=user, source=CalendarAccount.Source.USER).count()
    ordered = tuple(service for service in CalendarService.values if service in allowed)
    return ConnectAllowance(services=ordered, limit=limit, used=used)


def outbound_policy() -> OutboundPolicy:
    """Private servers Convene may reach: the OUTBOUND_ALLOWED_NETWORKS setting plus
    the rules admins add in the admin (host names or CIDR networks)."""
    base = outbound_policy_from_settings()
    networks: list[IPNetwork] = list(base.allowed_networks)
    hosts: list[str] = list(base.allowed_hosts)
    for value in OutboundAllowRule.objects.values_list("value", flat=True):
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            hosts.append(value)
    return OutboundPolicy(allowed_networks=networks, allowed_hosts=hosts)


def calendar_accounts_of(*, user: User) -> QuerySet[CalendarAccount]:
    return (
        CalendarAccount.objects.filter(owner=user)
        .select_related("organization")
        .prefetch_related(Prefetch("calendars", queryset=Calendar.objects.filter(is_deleted=False)))
    )


def calendar_account_of(*, user: User, pk: int) -> CalendarAccount:
    """One of the user's own accounts; anyone else's raises DoesNotExist."""
    return calendar_accounts_of(user=user).get(pk=pk)
