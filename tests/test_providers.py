import json
import socket
import statistics
import threading
import time
from collections import Counter, defaultdict
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from stdnum.cn import ric, uscc

from underwriting.providers import (
    PROVIDERS,
    TIER_WEIGHTS,
    TIERS,
    CircuitBreaker,
    HttpProvider,
    ProviderError,
    SandboxProvider,
    make_resident_id,
    make_uscc,
    sandbox_tier,
)
from underwriting.sources import SOURCES, validate_payload

AS_OF = date(2025, 6, 30)
N_FIRMS = 2000


# =========================================================================== identifiers


def test_make_uscc_is_valid_unique_and_deterministic():
    codes = [make_uscc(seed) for seed in range(500)]
    assert len(set(codes)) == len(codes)
    for code in codes:
        assert len(code) == 18
        assert uscc.is_valid(code), code
        assert code.startswith("91")
    assert codes == [make_uscc(seed) for seed in range(500)]


def test_make_uscc_check_digit_matches_stdnum():
    code = make_uscc(7)
    assert code[-1] == uscc.calc_check_digit(code[:17])
    assert uscc.validate(code) == code


@pytest.mark.parametrize("tier", TIERS)
def test_make_uscc_with_tier(tier):
    codes = {make_uscc(seed, tier=tier) for seed in range(30)}
    assert len(codes) == 30
    for code in codes:
        assert uscc.is_valid(code)
        assert sandbox_tier(code) == tier
    assert make_uscc(3, tier=tier) == make_uscc(3, tier=tier)


def test_make_uscc_rejects_unknown_tier():
    with pytest.raises(ValueError):
        make_uscc(1, tier="platinum")


@pytest.mark.parametrize("birth_year", [1950, 1965, 1978, 1985, 1990, 1999, 2005])
def test_make_resident_id_valid(birth_year):
    ids = {make_resident_id(seed, birth_year=birth_year) for seed in range(40)}
    assert len(ids) == 40
    for number in ids:
        assert ric.is_valid(number), number
        assert ric.get_birth_date(number).year == birth_year
    assert make_resident_id(5, birth_year=birth_year) == make_resident_id(5, birth_year=birth_year)


def test_make_resident_id_rejects_silly_years():
    with pytest.raises(ValueError):
        make_resident_id(1, birth_year=1800)


# =========================================================================== sandbox


@pytest.fixture(scope="module")
def portfolio():
    """All seven payloads for N_FIRMS synthetic enterprises, grouped by tier."""
    provider = SandboxProvider()
    firms = []
    for seed in range(N_FIRMS):
        code = make_uscc(seed)
        payloads = {source: provider.fetch(source, code, as_of=AS_OF) for source in SOURCES}
        firms.append((code, sandbox_tier(code), payloads))
    return firms


def by_tier(portfolio):
    groups = defaultdict(list)
    for _, tier, payloads in portfolio:
        groups[tier].append(payloads)
    return groups


def rate(rows, predicate):
    return sum(1 for row in rows if predicate(row)) / len(rows)


def test_sandbox_is_deterministic():
    code = make_uscc(42)
    first = {s: SandboxProvider().fetch(s, code, as_of=AS_OF) for s in SOURCES}
    second = {s: SandboxProvider().fetch(s, code, as_of=AS_OF) for s in SOURCES}
    assert first == second
    other = {s: SandboxProvider().fetch(s, make_uscc(43), as_of=AS_OF) for s in SOURCES}
    assert other != first


def test_sandbox_accepts_formatted_uscc():
    code = make_uscc(9)
    spaced = f" {code[:2]} {code[2:8]} {code[8:].lower()} "
    assert SandboxProvider().fetch("tax", spaced, as_of=AS_OF) == SandboxProvider().fetch(
        "tax", code, as_of=AS_OF
    )


def test_sandbox_output_is_schema_valid(portfolio):
    assert len(portfolio) == N_FIRMS
    for code, _, payloads in portfolio:
        for source, payload in payloads.items():
            cleaned, errors = validate_payload(source, payload)
            assert errors == {}, (code, source, errors)
            assert cleaned == payload


def test_sandbox_tier_proportions(portfolio):
    counts = Counter(tier for _, tier, _ in portfolio)
    for tier in TIERS:
        share = counts[tier] / N_FIRMS
        assert abs(share - TIER_WEIGHTS[tier]) < 0.035, (tier, share)


def test_sandbox_realistic_ranges(portfolio):
    revenues = sorted(float(p["tax"]["revenue_12m"]) for _, _, p in portfolio)
    median = statistics.median(revenues)
    assert 3e6 < median < 15e6
    within = sum(1e6 <= r <= 50e6 for r in revenues) / len(revenues)
    assert within > 0.85
    for _, _, p in portfolio:
        tax, registry = p["tax"], p["registry"]
        revenue = float(tax["revenue_12m"])
        assert 0.0099 <= float(tax["tax_paid_12m"]) / revenue <= 0.0601
        founded = date.fromisoformat(registry["founded_on"])
        assert 1 <= (AS_OF - founded).days / 365.25 <= 20.01
        assert 5 <= p["social_security"]["headcount"] <= 200
        assert 0 <= p["credit_bureau"]["inquiries_3m"] <= 10
        assert ric.is_valid(registry["legal_rep_id_number"])
        if float(p["credit_bureau"]["current_overdue_amount"]) > 0:
            assert p["credit_bureau"]["overdue_count_24m"] >= 1 and p["credit_bureau"]["max_dpd_24m"] >= 1
        if p["credit_bureau"]["overdue_count_24m"] == 0:
            assert p["credit_bureau"]["max_dpd_24m"] == 0
    months = [p["tax"]["months_filed"] for _, _, p in portfolio]
    assert sum(m >= 24 for m in months) / len(months) > 0.85
    grades = Counter(p["tax"]["tax_grade"] for _, _, p in portfolio)
    assert set(grades) == {"A", "B", "M", "C", "D"}
    assert (grades["A"] + grades["B"] + grades["M"]) / N_FIRMS > 0.8
    # Rare but present: a few firms should fail hard admission rules.
    dishonest = rate([p for _, _, p in portfolio], lambda p: p["judicial"]["dishonest_debtor"])
    inactive = rate([p for _, _, p in portfolio], lambda p: p["registry"]["status"] != "active")
    current_overdue = rate(
        [p for _, _, p in portfolio], lambda p: float(p["credit_bureau"]["current_overdue_amount"]) > 0
    )
    assert 0.002 < dishonest < 0.05
    assert 0.001 < inactive < 0.03
    assert 0.002 < current_overdue < 0.05


def test_sandbox_risk_is_monotone_by_tier(portfolio):
    groups = by_tier(portfolio)

    def metric(fn):
        return [fn(groups[tier]) for tier in TIERS]

    overdue = metric(lambda rows: rate(rows, lambda p: p["credit_bureau"]["overdue_count_24m"] > 0))
    inquiries = metric(lambda rows: statistics.mean(p["credit_bureau"]["inquiries_3m"] for p in rows))
    poor_grade = metric(lambda rows: rate(rows, lambda p: p["tax"]["tax_grade"] in ("C", "D")))
    grade_a = metric(lambda rows: rate(rows, lambda p: p["tax"]["tax_grade"] == "A"))
    litigation = metric(lambda rows: statistics.mean(p["judicial"]["litigation_cases_12m"] for p in rows))
    burden = metric(
        lambda rows: statistics.median(
            float(p["tax"]["tax_paid_12m"]) / float(p["tax"]["revenue_12m"]) for p in rows
        )
    )
    for series in (overdue, inquiries, poor_grade, litigation):
        assert series == sorted(series), series
    assert grade_a == sorted(grade_a, reverse=True)
    assert burden == sorted(burden, reverse=True)

    prime, bad = groups["prime"], groups["bad"]
    assert rate(bad, lambda p: p["judicial"]["dishonest_debtor"]) > rate(
        prime, lambda p: p["judicial"]["dishonest_debtor"]
    )
    assert rate(prime, lambda p: p["judicial"]["dishonest_debtor"]) == 0
    assert rate(bad, lambda p: float(p["credit_bureau"]["current_overdue_amount"]) > 0) > 0.05
    assert statistics.mean(p["credit_bureau"]["max_dpd_24m"] for p in bad) > 5 * statistics.mean(
        p["credit_bureau"]["max_dpd_24m"] for p in prime
    )
    assert rate(bad, lambda p: p["registry"]["status"] != "active") > rate(
        prime, lambda p: p["registry"]["status"] != "active"
    )

    def growth(p):
        return float(p["tax"]["revenue_12m"]) / float(p["tax"]["revenue_prev_12m"]) - 1

    assert statistics.median(growth(p) for p in prime) > statistics.median(growth(p) for p in bad)


def test_sandbox_sources_agree_with_each_other(portfolio):
    for _, _, p in portfolio[:300]:
        revenue = float(p["tax"]["revenue_12m"])
        inflow = float(p["internal"]["settlement_inflow_12m"])
        assert inflow <= revenue * 1.5
        assert float(p["customs"]["export_12m"]) <= revenue


def test_sandbox_uses_hints():
    code = make_uscc(11, tier="good")
    rep_id = make_resident_id(3, birth_year=1982)
    hints = {
        "legal_rep_id_number": rep_id,
        "founded_on": date(2012, 4, 18),
        "industry_code": "i6513",
        "employees": 40,
        "annual_revenue": "12000000.00",
    }
    provider = SandboxProvider()
    registry = provider.fetch("registry", code, as_of=AS_OF, hints=hints)
    assert registry["legal_rep_id_number"] == rep_id
    assert registry["founded_on"] == "2012-04-18"
    assert registry["industry_code"] == "I6513"
    headcount = provider.fetch("social_security", code, as_of=AS_OF, hints=hints)["headcount"]
    assert 20 <= headcount <= 40
    revenue = float(provider.fetch("tax", code, as_of=AS_OF, hints=hints)["revenue_12m"])
    assert 8e6 < revenue < 15e6
    # String dates work too, and hints never disturb unrelated sources.
    assert (
        provider.fetch("registry", code, as_of=AS_OF, hints={"founded_on": "2012-04-18"})["founded_on"]
        == "2012-04-18"
    )
    assert provider.fetch("judicial", code, as_of=AS_OF, hints=hints) == provider.fetch(
        "judicial", code, as_of=AS_OF
    )


def test_sandbox_ignores_unusable_hints():
    code = make_uscc(12)
    plain = SandboxProvider().fetch("registry", code, as_of=AS_OF)
    hinted = SandboxProvider().fetch(
        "registry",
        code,
        as_of=AS_OF,
        hints={
            "founded_on": "2099-01-01",
            "industry_code": "Q1",
            "legal_rep_id_number": "",
            "employees": None,
        },
    )
    assert hinted == plain


def test_sandbox_errors():
    provider = SandboxProvider(unavailable=["customs"])
    with pytest.raises(ValueError):
        provider.fetch("weather", make_uscc(1), as_of=AS_OF)
    with pytest.raises(ProviderError) as excinfo:
        provider.fetch("tax", "91110108MA01ABCD2Y", as_of=AS_OF)
    assert excinfo.value.source == "tax" and excinfo.value.code == "rejected"
    with pytest.raises(ProviderError) as excinfo:
        provider.fetch("customs", make_uscc(1), as_of=AS_OF)
    assert excinfo.value.transient
    with pytest.raises(ValueError):
        SandboxProvider(unavailable=["weather"])


def test_provider_registry():
    assert PROVIDERS == {"sandbox": SandboxProvider, "http": HttpProvider}


def test_provider_error_attributes():
    exc = ProviderError("tax", "timed out")
    assert exc.source == "tax" and exc.reason == "timed out" and str(exc) == "tax: timed out"
    assert exc.transient
    assert not ProviderError("tax", "bad", code="invalid", field="tax_grade").transient


# =========================================================================== HTTP stub server

GOOD_TAX = {
    "tax_grade": "B",
    "months_filed": 48,
    "tax_paid_12m": "90000.00",
    "revenue_12m": "3000000.00",
    "revenue_prev_12m": "2800000.00",
    "major_violation": False,
}


class StubState:
    def __init__(self):
        self.lock = threading.Lock()
        self.hits = Counter()
        self.queries = []
        self.mode = {}  # scenario key -> override mode


class StubHandler(BaseHTTPRequestHandler):
    state: StubState  # set on the server class

    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        parts = urlsplit(self.path)
        scenario, key, source, code = parts.path.strip("/").split("/")
        state = self.server.state
        with state.lock:
            state.hits[key] += 1
            hit = state.hits[key]
            state.queries.append(parse_qs(parts.query))
            scenario = state.mode.get(key, scenario)
        if scenario == "good":
            self._send(200, GOOD_TAX)
        elif scenario == "slow":
            time.sleep(1.0)
            self._send(200, GOOD_TAX)
        elif scenario == "flaky":
            if hit == 1:
                self._send(500, {"error": "boom"})
            else:
                self._send(200, GOOD_TAX)
        elif scenario == "down":
            self._send(503, b"service unavailable", "text/plain")
        elif scenario == "missing":
            self._send(404, {"error": "not found"})
        elif scenario == "malformed":
            self._send(200, b"{'tax_grade': 'B',", "text/html")
        elif scenario == "invalid":
            self._send(200, dict(GOOD_TAX, tax_grade="Z"))
        else:  # pragma: no cover
            self._send(400, {"error": "unknown scenario"})


class StubServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address):  # client hung up on the slow scenario
        pass


@pytest.fixture(scope="module")
def stub():
    server = StubServer(("127.0.0.1", 0), StubHandler)
    server.state = StubState()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


_keys = iter(range(10**6))


def endpoint(stub, scenario):
    """Base URL for a scenario, with a fresh key so hit counts are per test."""
    key = f"k{next(_keys)}"
    return f"http://127.0.0.1:{stub.server_address[1]}/{scenario}/{key}", key


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


def test_http_good_answer(stub):
    base, key = endpoint(stub, "good")
    payload = HttpProvider(base).fetch("tax", make_uscc(1), as_of=AS_OF)
    assert payload == GOOD_TAX
    assert stub.state.hits[key] == 1
    assert {"as_of": ["2025-06-30"]} in stub.state.queries


def test_http_url_layout():
    provider = HttpProvider("http://example.invalid/api/")
    assert provider.url_for("credit_bureau", "91110108MA01ABCD2X", AS_OF) == (
        "http://example.invalid/api/credit_bureau/91110108MA01ABCD2X?as_of=2025-06-30"
    )


def test_http_slow_answer_times_out(stub):
    base, key = endpoint(stub, "slow")
    provider = HttpProvider(base, timeout=0.2, retries=1, backoff=0.05)
    started = time.monotonic()
    with pytest.raises(ProviderError) as excinfo:
        provider.fetch("tax", make_uscc(1), as_of=AS_OF)
    elapsed = time.monotonic() - started
    assert elapsed < 0.2 * 2 + 0.05 + 0.5
    assert elapsed >= 0.2 * 2
    assert excinfo.value.code == "unavailable"
    assert "timed out" in excinfo.value.reason
    assert stub.state.hits[key] == 2


def test_http_retry_after_500_succeeds(stub):
    base, key = endpoint(stub, "flaky")
    sleeps = Sleeps()
    payload = HttpProvider(base, retries=2, backoff=0.2, sleep=sleeps).fetch("tax", make_uscc(1), as_of=AS_OF)
    assert payload == GOOD_TAX
    assert stub.state.hits[key] == 2
    assert sleeps == [0.2]


def test_http_always_500_gives_up_with_exponential_backoff(stub):
    base, key = endpoint(stub, "down")
    sleeps = Sleeps()
    provider = HttpProvider(base, retries=3, backoff=0.1, sleep=sleeps)
    with pytest.raises(ProviderError) as excinfo:
        provider.fetch("tax", make_uscc(1), as_of=AS_OF)
    assert stub.state.hits[key] == 4
    assert sleeps == pytest.approx([0.1, 0.2, 0.4])
    assert excinfo.value.code == "unavailable" and excinfo.value.transient
    assert "503" in excinfo.value.reason and excinfo.value.source == "tax"


def test_http_4xx_is_not_retried(stub):
    base, key = endpoint(stub, "missing")
    sleeps = Sleeps()
    provider = HttpProvider(base, retries=3, sleep=sleeps)
    with pytest.raises(ProviderError) as excinfo:
        provider.fetch("registry", make_uscc(1), as_of=AS_OF)
    assert excinfo.value.code == "not_found" and excinfo.value.status == 404
    assert stub.state.hits[key] == 1 and sleeps == []
    assert provider.breaker.state("registry") == "closed"


def test_http_malformed_json(stub):
    base, key = endpoint(stub, "malformed")
    with pytest.raises(ProviderError) as excinfo:
        HttpProvider(base, sleep=Sleeps()).fetch("tax", make_uscc(1), as_of=AS_OF)
    assert excinfo.value.code == "malformed"
    assert "JSON" in excinfo.value.reason
    assert stub.state.hits[key] == 1


def test_http_schema_invalid_names_the_field(stub):
    base, _ = endpoint(stub, "invalid")
    with pytest.raises(ProviderError) as excinfo:
        HttpProvider(base, sleep=Sleeps()).fetch("tax", make_uscc(1), as_of=AS_OF)
    exc = excinfo.value
    assert exc.code == "invalid" and exc.field == "tax_grade"
    assert "tax_grade" in str(exc) and "tax_grade" in exc.reason
    assert list(exc.errors) == ["tax_grade"]


def test_http_wrong_source_payload_names_fields(stub):
    base, _ = endpoint(stub, "good")  # a tax payload served for the judicial source
    with pytest.raises(ProviderError) as excinfo:
        HttpProvider(base, sleep=Sleeps()).fetch("judicial", make_uscc(1), as_of=AS_OF)
    assert excinfo.value.field == "dishonest_debtor"
    assert "tax_grade" in excinfo.value.errors


def test_http_connection_refused():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps = Sleeps()
    with pytest.raises(ProviderError) as excinfo:
        HttpProvider(f"http://127.0.0.1:{port}", retries=2, sleep=sleeps, timeout=1).fetch(
            "tax", make_uscc(1), as_of=AS_OF
        )
    assert excinfo.value.code == "unavailable"
    assert len(sleeps) == 2


def test_http_unknown_source():
    with pytest.raises(ValueError):
        HttpProvider("http://127.0.0.1:9").fetch("weather", make_uscc(1), as_of=AS_OF)


# =========================================================================== circuit breaker


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


def test_http_circuit_breaker_opens_fails_fast_and_recovers(stub):
    base, key = endpoint(stub, "down")
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_after=30.0, clock=clock)
    provider = HttpProvider(base, retries=0, breaker=breaker, sleep=Sleeps())
    code = make_uscc(1)

    for _ in range(3):
        with pytest.raises(ProviderError) as excinfo:
            provider.fetch("tax", code, as_of=AS_OF)
        assert excinfo.value.code == "unavailable"
    assert stub.state.hits[key] == 3
    assert breaker.state("tax") == "open"

    # Open: fails fast without touching the server.
    started = time.monotonic()
    with pytest.raises(ProviderError) as excinfo:
        provider.fetch("tax", code, as_of=AS_OF)
    assert excinfo.value.code == "circuit_open" and excinfo.value.transient
    assert time.monotonic() - started < 0.05
    assert stub.state.hits[key] == 3
    # Other sources have their own circuit.
    assert breaker.state("registry") == "closed"

    # Half-open after reset_after: one trial; it fails -> open again.
    clock.advance(29.9)
    with pytest.raises(ProviderError):
        provider.fetch("tax", code, as_of=AS_OF)
    assert stub.state.hits[key] == 3
    clock.advance(0.1)
    assert breaker.state("tax") == "half_open"
    with pytest.raises(ProviderError) as excinfo:
        provider.fetch("tax", code, as_of=AS_OF)
    assert excinfo.value.code == "unavailable"
    assert stub.state.hits[key] == 4
    assert breaker.state("tax") == "open"
    with pytest.raises(ProviderError) as excinfo:
        provider.fetch("tax", code, as_of=AS_OF)
    assert excinfo.value.code == "circuit_open"
    assert stub.state.hits[key] == 4

    # Service recovers: the next trial succeeds and closes the circuit.
    with stub.state.lock:
        stub.state.mode[key] = "good"
    clock.advance(30.0)
    assert provider.fetch("tax", code, as_of=AS_OF) == GOOD_TAX
    assert breaker.state("tax") == "closed"
    assert provider.fetch("tax", code, as_of=AS_OF) == GOOD_TAX
    assert stub.state.hits[key] == 6


def test_breaker_success_resets_consecutive_count():
    breaker = CircuitBreaker(failure_threshold=2, reset_after=5, clock=FakeClock())
    breaker.record_failure("tax")
    breaker.record_success("tax")
    breaker.record_failure("tax")
    assert breaker.state("tax") == "closed" and breaker.allow("tax")
    breaker.record_failure("tax")
    assert breaker.state("tax") == "open" and not breaker.allow("tax")


def test_breaker_half_open_admits_a_single_trial():
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_after=10, clock=clock)
    breaker.record_failure("customs")
    assert not breaker.allow("customs")
    assert breaker.retry_after("customs") == pytest.approx(10)
    clock.advance(10)
    assert breaker.allow("customs")  # the trial
    assert not breaker.allow("customs")  # others still fail fast
    clock.advance(10)  # a trial that never reported back expires
    assert breaker.allow("customs")
    breaker.record_success("customs")
    assert breaker.state("customs") == "closed" and breaker.retry_after("customs") == 0


def test_breaker_is_thread_safe():
    breaker = CircuitBreaker(failure_threshold=10**9, reset_after=1)
    threads = [
        threading.Thread(target=lambda: [breaker.record_failure("tax") for _ in range(500)])
        for _ in range(16)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert breaker.store.get("tax")["failures"] == 16 * 500


def test_breaker_state_store_hook():
    class DictStore:
        def __init__(self):
            self.data = {}

        def get(self, key):
            return self.data.get(key)

        def set(self, key, value):
            self.data[key] = dict(value)

    store = DictStore()
    clock = FakeClock()
    first = CircuitBreaker(failure_threshold=2, reset_after=10, clock=clock, state_store=store)
    second = CircuitBreaker(failure_threshold=2, reset_after=10, clock=clock, state_store=store)
    first.record_failure("judicial")
    second.record_failure("judicial")
    assert first.state("judicial") == second.state("judicial") == "open"
    assert store.data["judicial"]["state"] == "open"


def test_breaker_validates_arguments():
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker(reset_after=-1)
