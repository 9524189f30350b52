"""Fuzzed Kinesis records for the chaos suite's fuzz case, each with what the consumer must make of it.

A `Fuzzed` record says which of its parts must become dead letters (sub-index → the reasons allowed) and
which calls and logs in it must be counted (`Good`: person, team, request or error, cost in nano-dollars).
Cost is computed here from the price table's rates (`Prices`, read from MySQL by the test), not by the
product's code. Prompt text ("PROMPT-SECRET-<n>") is put where prompts are: invocation log bodies (and, on
good CloudTrail records, in a request field the decoder never reads). A bad record that is not a log
carries none: the consumer keeps such a record whole in its dead letter, by design.
"""

from __future__ import annotations

import gzip
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson

from devtools.simulate import Person, bedrock_event, invocation_log
from tests.chaos.fuzz_fields import LOG_FIELDS, NOT_OBJECTS, NOT_STRINGS, call_fields, wrong_values

MARKER = "PROMPT-SECRET-"
MODELS = ("anthropic.claude-sonnet-4-5-20250929-v1:0", "amazon.nova-pro-v1:0")
FALLBACK = "meta.llama3-3-70b-instruct-v1:0"  # PRICE_FALLBACK of the case: what an unknown model costs
PARTS = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h")


@dataclass(frozen=True)
class Good:
    person: str  # quota key
    team: str  # the team charged (DEFAULT_TEAM for none)
    requests: int = 0
    errors: int = 0
    cost: int = 0  # nano-dollars
    logs: int = 0


@dataclass
class Fuzzed:
    kind: str
    data: bytes
    bad: dict[int, frozenset[str]] = field(default_factory=dict)  # sub-index → allowed reasons
    good: list[Good] = field(default_factory=list)


class Prices:
    """Rates per million tokens by model (standard tier, regional, any region), as the table gives them."""

    def __init__(self, rates: dict[str, tuple[Decimal, ...]]) -> None:
        self._rates = rates

    def nanos(self, model: str, tokens: tuple[int, int, int, int, int]) -> int:
        exact = sum((Decimal(t) * p for t, p in zip(tokens, self._rates[model], strict=True)), Decimal(0))
        return int((exact * 1000).to_integral_value(ROUND_HALF_UP))  # $/M tokens * 1000 = nano-dollars/token


def deep_bytes(depth: int) -> bytes:
    """Nesting too deep for orjson.dumps (it recurses), built as text."""
    return b'{"n":' * depth + b"1" + b"}" * depth


class Fuzzer:
    def __init__(self, rng: random.Random, crowd: list[tuple[Person, str]], prices: Prices, now: datetime) -> None:
        self.rng = rng
        self.crowd = crowd
        self.prices = prices
        self.now = now
        self._n = 0
        self._by_arn = {person.user_identity()["arn"]: (person.quota_key, team) for person, team in crowd}

    # -- good parts -----------------------------------------------------------------------------

    def marker(self) -> str:
        self._n += 1
        return f"{MARKER}{self._n}"

    def _who(self) -> tuple[Person, str]:
        return self.rng.choice(self.crowd)

    def _when(self) -> datetime:
        return self.now - timedelta(seconds=self.rng.randrange(0, 900))

    def call(self, *, error: str | None = None, secret: bool = True) -> tuple[dict[str, Any], Good]:
        person, team = self._who()
        event = bedrock_event(person, self._when(), self.rng, error)
        if secret:  # CloudTrail logs no prompt; a field the decoder never reads must not be kept either
            event["detail"]["requestParameters"]["messages"] = [{"text": self.marker()}]
        good = Good(person.quota_key, team, requests=0 if error else 1, errors=1 if error else 0)
        return event, good

    def log(self, *, model: str | None = None, body_bytes: int = 200) -> tuple[dict[str, Any], Good]:
        call, _ = self.call(secret=False)
        person_key, team = self._by_arn[call["detail"]["userIdentity"]["arn"]]
        model = model or self.rng.choice(MODELS)
        call["detail"]["requestParameters"]["modelId"] = model
        tokens_in, tokens_out = self.rng.randrange(1, 5000), self.rng.randrange(0, 2000)
        entry = invocation_log(call, self.rng, input_tokens=tokens_in, output_tokens=tokens_out, body_bytes=4)
        prompt = self.marker() + " " + "p" * body_bytes
        entry["input"]["inputBodyJson"]["messages"][0]["content"][0]["text"] = prompt
        entry["output"]["outputBodyJson"]["output"]["message"]["content"][0]["text"] = self.marker()
        cached = entry["input"]["cacheWriteInputTokenCount"]
        cost = self.prices.nanos(model, (tokens_in, tokens_out, 0, cached, 0))
        return entry, Good(person_key, team, cost=cost, logs=1)

    def priced_at_fallback(self, entry: dict[str, Any], good: Good) -> Good:
        tokens = (entry["input"]["inputTokenCount"], entry["output"]["outputTokenCount"], 0,
                  entry["input"]["cacheWriteInputTokenCount"], 0)
        return Good(good.person, good.team, cost=self.prices.nanos(FALLBACK, tokens), logs=1)

    # -- records ---------------------------------------------------------------------------------

    def good_record(self) -> Fuzzed:
        roll = self.rng.random()
        if roll < 0.35:
            event, good = self.call(error="ThrottlingException" if self.rng.random() < 0.1 else None)
            return Fuzzed("good_call", orjson.dumps(event), good=[good])
        if roll < 0.6:
            entry, good = self.log()
            return Fuzzed("good_log", orjson.dumps(entry), good=[good])
        if roll < 0.85:
            logs = [self.log() for _ in range(self.rng.randrange(1, 8))]
            return Fuzzed("good_cwl", subscription([e for e, _ in logs]), good=[g for _, g in logs])
        calls = [self.call() for _ in range(self.rng.randrange(1, 6))]
        data = orjson.dumps({"Records": [e["detail"] for e, _ in calls]})
        return Fuzzed("good_trail", gzip.compress(data) if self.rng.random() < 0.5 else data,
                      good=[g for _, g in calls])

    def bad_record(self) -> Fuzzed:
        makers: list[Callable[[], Fuzzed]] = [
            self.random_bytes, self.truncated, self.too_deep, self.wrong_call, self.wrong_log, self.huge,
            self.bad_gzip, self.invalid_utf8, self.broken_cwl, self.trail_with_bad, self.wrong_cwl,
            self.deep_but_parsed, self.tolerated,
        ]
        return self.rng.choice(makers)()

    def random_bytes(self) -> Fuzzed:
        data = self.rng.randbytes(self.rng.randrange(0, 3000))
        return Fuzzed("random_bytes", data, bad={0: frozenset({"not_json", "bad_gzip", "unknown_shape"})})

    def truncated(self) -> Fuzzed:
        roll = self.rng.random()
        if roll < 0.4:
            data = orjson.dumps(self.call(secret=False)[0])
        elif roll < 0.8:
            data = orjson.dumps(self.log()[0])
        else:
            data = subscription([self.log()[0] for _ in range(3)])
            return Fuzzed("truncated_gzip", data[:self.rng.randrange(2, len(data))], bad={0: frozenset({"bad_gzip"})})
        return Fuzzed("truncated_json", data[:self.rng.randrange(1, len(data))], bad={0: frozenset({"not_json"})})

    def too_deep(self) -> Fuzzed:
        depth = self.rng.randrange(1100, 20000)
        deep = deep_bytes(depth)
        roll = self.rng.random()
        if roll < 0.3:
            data = deep
        elif roll < 0.6:
            event = orjson.dumps(self.call(secret=False)[0])
            data = event.replace(b'"readOnly":true', b'"readOnly":' + deep, 1)
        else:
            data = orjson.dumps(self.log()[0]).replace(b'"stopReason":"end_turn"', b'"stopReason":' + deep, 1)
        return Fuzzed("too_deep", data, bad={0: frozenset({"not_json"})})

    def deep_but_parsed(self) -> Fuzzed:
        """Deep enough that orjson parses it but cannot write it back (255 to 1000 levels)."""
        depth = self.rng.randrange(255, 1000)
        roll = self.rng.random()
        if roll < 0.3:
            return Fuzzed("deep_document", deep_bytes(depth), bad={0: frozenset({"unknown_shape"})})
        if roll < 0.65:
            calls = [self.call() for _ in range(2)]
            data = b'{"Records":[' + orjson.dumps(calls[0][0]["detail"]) + b"," + deep_bytes(depth) + b"," + \
                orjson.dumps(calls[1][0]["detail"]) + b"]}"
            return Fuzzed("deep_trail_entry", data, bad={1: frozenset({"unexpected_source"})},
                          good=[calls[0][1], calls[1][1]])
        logs = [self.log() for _ in range(2)]
        events = [{"id": "0", "timestamp": 0, "message": orjson.dumps(logs[0][0]).decode()}, "DEEP",
                  {"id": "2", "timestamp": 0, "message": orjson.dumps(logs[1][0]).decode()}]
        data = orjson.dumps({"messageType": "DATA_MESSAGE", "owner": "111122223333", "logEvents": events})
        data = data.replace(b'"DEEP"', deep_bytes(depth), 1)
        return Fuzzed("deep_cwl_event", gzip.compress(data), bad={1: frozenset({"unknown_shape"})},
                      good=[logs[0][1], logs[1][1]])

    def wrong_call(self) -> Fuzzed:
        event, _ = self.call(secret=False)
        path, reason = self.rng.choice(call_fields(event))
        _set(event, path, self.rng.choice(wrong_values(path)))
        return Fuzzed("wrong_type_call", orjson.dumps(event), bad={0: frozenset({reason})})

    def wrong_log(self) -> Fuzzed:
        entry, _ = self.log()
        path, values, reason = self.rng.choice(LOG_FIELDS)
        _set(entry, path, self.rng.choice(values))
        return Fuzzed("wrong_type_log", orjson.dumps(entry), bad={0: frozenset({reason})})

    def huge(self) -> Fuzzed:
        size = self.rng.choice((70, 600, 5000, 100_000, 900_000))
        big = "".join(self.rng.choice("abcdef0123456789") for _ in range(64)) * (max(size, 1000) // 64 + 1)
        roll = self.rng.random()
        if roll < 0.25:
            event, _ = self.call(secret=False)
            event["detail"]["eventID"] = big[:max(size, 65)]
            return Fuzzed("huge_event_id", orjson.dumps(event), bad={0: frozenset({"invalid_cloudtrail"})})
        if roll < 0.45:
            entry, _ = self.log()
            entry["requestId"] = big[:max(size, 65)]
            return Fuzzed("huge_request_id", orjson.dumps(entry), bad={0: frozenset({"invalid_invocation_log"})})
        if roll < 0.7:  # identities too long for their columns: rejected, not a crash loop
            event, _ = self.call(secret=False)
            identity = event["detail"]["userIdentity"]
            name = "u" + big[:max(size, 600)]
            if identity["type"] == "IAMUser":
                identity["userName"] = name
                identity["arn"] = identity["arn"].rsplit("/", 1)[0] + "/" + name
            else:
                identity["arn"] = identity["arn"].rsplit("/", 1)[0] + "/" + name
                identity["principalId"] = identity["principalId"].split(":")[0] + ":" + name
            return Fuzzed("huge_identity", orjson.dumps(event), bad={0: frozenset({"unknown_identity"})})
        if roll < 0.85:  # a huge prompt: the log is counted, its body dropped
            entry, good = self.log(body_bytes=size)
            return Fuzzed("huge_prompt", orjson.dumps(entry), good=[good])
        event, good = self.call()  # a huge user agent: cut to its column, the call counted
        event["detail"]["userAgent"] = big[:size]
        return Fuzzed("huge_user_agent", orjson.dumps(event), good=[good])

    def bad_gzip(self) -> Fuzzed:
        roll = self.rng.random()
        if roll < 0.4:
            return Fuzzed("gzip_garbage", b"\x1f\x8b" + self.rng.randbytes(self.rng.randrange(0, 500)),
                          bad={0: frozenset({"bad_gzip"})})
        data = bytearray(subscription([self.log()[0] for _ in range(3)]))
        if roll < 0.8:  # a flipped bit after the header (the header's mtime, flags… are not checked)
            while True:  # a few bits are not checked either: the padding after the last deflate block
                flipped = bytearray(data)
                flipped[self.rng.randrange(10, len(data))] ^= 1 << self.rng.randrange(8)
                try:
                    gzip.decompress(flipped)
                except (OSError, EOFError, zlib.error):
                    return Fuzzed("gzip_flipped", bytes(flipped), bad={0: frozenset({"bad_gzip"})})
        second = gzip.compress(b'{"more": 1}')
        return Fuzzed("gzip_bad_member", bytes(data) + second[:-3], bad={0: frozenset({"bad_gzip"})})

    def invalid_utf8(self) -> Fuzzed:
        bad = self.rng.choice((b"\xff", b"\xc3(", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\\ud800", b"\\udc80x"))
        if self.rng.random() < 0.5:
            data = orjson.dumps(self.call(secret=False)[0]).replace(b"Boto3/", b"Boto3/" + bad, 1)
            return Fuzzed("invalid_utf8_call", data, bad={0: frozenset({"not_json"})})
        entry, _ = self.log()
        data = orjson.dumps(entry).replace(MARKER.encode(), bad + MARKER.encode(), 1)
        if self.rng.random() < 0.5:
            return Fuzzed("invalid_utf8_log", data, bad={0: frozenset({"not_json"})})
        # A log event's message with the bad bytes or escape: the whole payload is not JSON.
        payload = (b'{"messageType":"DATA_MESSAGE","logEvents":[{"id":"0","message":"' + bad + b" "
                   + self.marker().encode() + b'"}]}')
        return Fuzzed("invalid_utf8_cwl", gzip.compress(payload), bad={0: frozenset({"not_json"})})

    def broken_cwl(self) -> Fuzzed:
        """A CloudWatch Logs payload whose log events are good and broken, mixed: each broken one is a dead
        letter at its index, the good ones are counted."""
        events: list[Any] = []
        fuzzed = Fuzzed("broken_cwl", b"")
        for index in range(self.rng.randrange(2, 12)):
            if self.rng.random() < 0.5:
                entry, good = self.log()
                events.append({"id": str(index), "timestamp": 0, "message": orjson.dumps(entry).decode()})
                fuzzed.good.append(good)
                continue
            event, reason = self._broken_event(index)
            events.append(event)
            fuzzed.bad[index] = frozenset({reason})
        fuzzed.data = orjson.dumps({"messageType": "DATA_MESSAGE", "owner": "111122223333", "logGroup": "g",
                                    "logStream": "s", "subscriptionFilters": ["f"], "logEvents": events})
        if self.rng.random() < 0.8:
            fuzzed.data = gzip.compress(fuzzed.data)
        return fuzzed

    def _broken_event(self, index: int) -> tuple[Any, str]:
        roll = self.rng.randrange(7)
        if roll == 0:
            message = self.rng.choice((None, 5, [self.marker()], {"text": self.marker()}))
            return {"id": str(index), "message": message}, "unknown_shape"
        if roll == 1:
            return self.rng.choice(("a string", 5, None, [1, 2])), "unknown_shape"
        if roll == 2:
            text = orjson.dumps(self.log()[0]).decode()
            return {"id": str(index), "message": text[:self.rng.randrange(1, len(text))]}, "not_json"
        if roll == 3:
            return {"id": str(index), "message": self.rng.choice(("[1, 2]", '"text"', '{"a": 1}', "17"))}, \
                "unknown_shape"
        if roll == 4:
            entry, _ = self.log()
            del entry["schemaType"]
            return {"id": str(index), "message": orjson.dumps(entry).decode()}, "unknown_shape"
        entry, _ = self.log()
        path, values, reason = self.rng.choice(LOG_FIELDS)
        _set(entry, path, self.rng.choice(values))
        return {"id": str(index), "message": orjson.dumps(entry).decode()}, reason

    def wrong_cwl(self) -> Fuzzed:
        logs = [self.log()[0] for _ in range(2)]
        payload: dict[str, Any] = {"messageType": "DATA_MESSAGE", "logEvents": [
            {"id": "0", "message": orjson.dumps(e).decode()} for e in logs]}
        if self.rng.random() < 0.5:
            payload["messageType"] = self.rng.choice((5, "DATA", None, ["DATA_MESSAGE"]))
        else:
            payload["logEvents"] = self.rng.choice(({"0": payload["logEvents"][0]}, "events", 3, None))
        return Fuzzed("wrong_cwl", gzip.compress(orjson.dumps(payload)), bad={0: frozenset({"unknown_shape"})})

    def trail_with_bad(self) -> Fuzzed:
        """A CloudTrail log file with bad records among good ones."""
        fuzzed = Fuzzed("trail_with_bad", b"")
        records: list[Any] = []
        for index in range(self.rng.randrange(2, 10)):
            if self.rng.random() < 0.5:
                event, good = self.call()
                records.append(event["detail"])
                fuzzed.good.append(good)
                continue
            event, _ = self.call(secret=False)
            if self.rng.random() < 0.2:
                records.append(self.rng.choice(NOT_OBJECTS))
                fuzzed.bad[index] = frozenset({"invalid_cloudtrail"})
                continue
            path, reason = self.rng.choice([(p, r) for p, r in call_fields(event) if p[0] == "detail" and len(p) > 1])
            _set(event, path, self.rng.choice(wrong_values(path)))
            records.append(event["detail"])
            fuzzed.bad[index] = frozenset({reason})
        fuzzed.data = orjson.dumps({"Records": records})
        if self.rng.random() < 0.5:
            fuzzed.data = gzip.compress(fuzzed.data)
        return fuzzed

    def tolerated(self) -> Fuzzed:
        """Wrong types or characters in fields the decoder reads but does not need: the call or log is
        counted (a bad optional field is no reason to lose it), the field cut, replaced or dropped."""
        if self.rng.random() < 0.5:
            event, good = self.call()
            detail = event["detail"]
            name = self.rng.choice(("awsRegion", "recipientAccountId", "requestID", "sourceIPAddress", "userAgent",
                                    "requestParameters", "additionalEventData", "modelId"))
            value = self.rng.choice((*NOT_STRINGS, "r\u00e9gion-\u00fc", "x" * 300, {"ü": "é"}, ["é"]))
            if name == "modelId":
                detail["requestParameters"]["modelId"] = value
            else:
                detail[name] = value
            return Fuzzed(f"tolerated_call_{name}", orjson.dumps(event), good=[good])
        entry, good = self.log()
        name = self.rng.choice(("accountId", "region", "inferenceRegion", "operation", "modelId", "errorCode",
                                "serviceTier", "performanceConfig"))
        entry[name] = self.rng.choice((*NOT_STRINGS, "ré-ü", "x" * 300, None))
        if name == "modelId":  # no model it names: charged at the fallback, never free
            good = self.priced_at_fallback(entry, good)
        return Fuzzed(f"tolerated_log_{name}", orjson.dumps(entry), good=[good])


def subscription(logs: list[dict[str, Any]]) -> bytes:
    payload = {"messageType": "DATA_MESSAGE", "owner": "111122223333", "logGroup": "/aws/bedrock/invocations",
               "logStream": "aws/bedrock/modelinvocations", "subscriptionFilters": ["bedrock-usage-control"],
               "logEvents": [{"id": str(i), "timestamp": 0, "message": orjson.dumps(e).decode()}
                             for i, e in enumerate(logs)]}
    return gzip.compress(orjson.dumps(payload))


def _set(document: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for name in path[:-1]:
        document = document[name]
    document[path[-1]] = value
