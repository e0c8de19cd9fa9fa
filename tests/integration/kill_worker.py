"""The process that test_kill_consistency kills: it works through a deterministic plan of orders
and acknowledges each finished step in an append-only ack file, made durable (flush + fsync)
before it goes on.

Step i of the plan (a function of the seed and i only, so a restarted process makes the same
requests again) is one of:

- "market": a paper market order, filled at once (order, execution, cash entry, audit event in
  the submit's transaction);
- "external": a limit order at an external venue (pending_new), then the venue's drop copy
  applied with `order_book.apply_reports` (an acknowledgement, fills with commissions, sometimes
  the same ExecID twice, sometimes a bust and a fill replacing the busted one, sometimes a
  correction of the last fill's price and commission);
- "rest": a paper limit order away from the market (it rests), then canceled;
- "batch": a file of BATCH paper market orders (`order_book.submit_file`'s group commit, in
  groups of BATCH_GROUP orders per transaction): each group is acknowledged (op "batch", its orders)
  once it has committed, so a kill lands before, inside or after a group's commit.

After a restart the process finishes the step it was killed in (a submit repeats the same client
order id, which must answer with the first order; a drop copy is applied again, which must skip
what was applied), checks that repeating acknowledged work changes nothing, and goes on.

Run by the test as a forked process (`run`), or by hand against an initialised book set up as
the test does: `python -m tests.integration.kill_worker URL ACK_FILE SEED [MAX_STEPS]`.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import sys
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from oms import order_book, submission
from oms.book import Ctx
from oms.errors import BadInput
from oms.store import Store
from oms.values import OrdType, Side, TimeInForce

ACCOUNTS = tuple(f"K{n}" for n in range(8))
PRICES = {"KA": Decimal("10"), "KB": Decimal("25.5"), "KC": Decimal("40"), "KD": Decimal("100")}
DEPOSIT = Decimal(50_000_000)
VENUE = "XVEN"
TICK = Decimal("0.01")
REPLAYS = 3  # acknowledged submits repeated after each restart
BATCH, BATCH_GROUP = 200, 40  # orders per batch step, orders per transaction of a batch


@dataclass(frozen=True, slots=True)
class FixFill:
    exec_id: str
    quantity: Decimal
    price: Decimal
    commission: Decimal
    busted: bool = False  # a later message of the drop copy busts it
    corrected: tuple[Decimal, Decimal] | None = None  # a correction's (price, commission)

    @property
    def last_id(self) -> str:
        """The ExecID the fill stands under once the drop copy is applied."""
        return f"{self.exec_id}-C" if self.corrected else self.exec_id


@dataclass(frozen=True, slots=True)
class Step:
    index: int
    kind: str  # market | external | rest
    client_order_id: str
    account: str
    symbol: str
    side: str  # buy | sell
    quantity: Decimal
    limit: Decimal | None
    fills: tuple[FixFill, ...] = ()  # external: in drop-copy order
    repeat_fill: bool = False  # external: one fill message sent twice

    @property
    def sign(self) -> int:
        return 1 if self.side == "buy" else -1


def plan(seed: int, index: int) -> Step:
    """Step `index` of the plan: the same in every process."""
    rng = random.Random(f"{seed}:{index}")
    kind = rng.choices(("market", "external", "rest", "batch"), weights=(70, 20, 10, 4))[0]
    account = rng.choice(ACCOUNTS)
    symbol = rng.choice(sorted(PRICES))
    side = rng.choice(("buy", "sell"))
    quantity = Decimal(rng.randint(1, 20))
    ref = PRICES[symbol]
    cid = f"S{seed}-{index}"
    if kind in ("market", "batch"):
        return Step(index, kind, cid, account, symbol, side, quantity, None)
    if kind == "rest":  # a limit 5% away from the market, on the side that does not cross
        away = (ref * Decimal("0.95") if side == "buy" else ref * Decimal("1.05")).quantize(TICK)
        return Step(index, kind, cid, account, symbol, side, quantity, away)
    # external: fills at the limit or better, in up to three parts
    cuts = (
        sorted(rng.sample(range(1, int(quantity)), min(2, int(quantity) - 1)))
        if (quantity > 1 and rng.random() < 0.7)
        else []
    )
    bounds = [0, *cuts, int(quantity)]
    fills = []
    for n, (a, b) in enumerate(itertools.pairwise(bounds), 1):
        better = TICK * rng.randint(0, 5)
        px = ref - better if side == "buy" else ref + better
        fee = Decimal(rng.randint(0, 150)) / 100
        fills.append(FixFill(f"{cid}-F{n}", Decimal(b - a), px, fee))
    if rng.random() < 0.25:  # the venue busts the first fill and fills it again
        first = fills[0]
        fills[0] = FixFill(first.exec_id, first.quantity, first.price, first.commission, True)
        fills.append(FixFill(f"{cid}-R", first.quantity, ref, Decimal("0.10")))
    if rng.random() < 0.3:  # the venue corrects the last fill's price and commission
        last = fills[-1]
        # (a better price: within the order's limit)
        price = last.price - TICK * rng.randint(1, 3) * (1 if side == "buy" else -1)
        fee = Decimal(rng.randint(0, 150)) / 100
        fills[-1] = FixFill(
            last.exec_id, last.quantity, last.price, last.commission, corrected=(price, fee)
        )
    return Step(
        index,
        kind,
        cid,
        account,
        symbol,
        side,
        quantity,
        ref,
        tuple(fills),
        repeat_fill=rng.random() < 0.3,
    )


def batch_rows(step: Step) -> list[Step]:
    """The orders of a batch step's file: paper market orders, each with its own terms (the
    same terms twice in one file would be refused as a double submission)."""
    symbols = sorted(PRICES)
    return [
        Step(
            step.index,
            "market",
            f"{step.client_order_id}-{j}",
            ACCOUNTS[(step.index + j) % len(ACCOUNTS)],
            symbols[j % len(symbols)],
            "buy" if (j // len(symbols)) % 2 else "sell",
            Decimal(j + 1),
            None,
        )
        for j in range(BATCH)
    ]


def steps_by_cid(seed: int, upto: int) -> dict[str, Step]:
    """Every order of steps 0..upto-1 by its client order id (a batch's rows for a batch)."""
    out: dict[str, Step] = {}
    for i in range(upto):
        step = plan(seed, i)
        for s in batch_rows(step) if step.kind == "batch" else [step]:
            out[s.client_order_id] = s
    return out


def _fix(*fields: tuple[int, str]) -> str:
    """A FIX 4.4 message with a correct BodyLength and CheckSum, `|` for SOH."""
    body = "".join(f"{t}={v}\x01" for t, v in fields)
    head = f"8=FIX.4.4\x019={len(body.encode())}\x01"
    total = sum((head + body).encode()) % 256
    return (head + body + f"10={total:03d}\x01").replace("\x01", "|")


def drop_copy(step: Step) -> list[str]:
    """The venue's execution reports for an external step, in order."""
    cid, acct = step.client_order_id, step.account

    def report(exec_id: str, exec_type: str, *extra: tuple[int, str]) -> str:
        return _fix((35, "8"), (1, acct), (11, cid), (17, exec_id), (150, exec_type), *extra)

    lines = [report(f"{cid}-A", "0")]
    for n, f in enumerate(step.fills):
        lines.append(
            report(
                f.exec_id, "F", (32, str(f.quantity)), (31, str(f.price)), (12, str(f.commission))
            )
        )
        if n == 0 and step.repeat_fill:
            lines.append(lines[-1])  # the same ExecID again: must be skipped
        if f.busted:
            lines.append(report(f"{f.exec_id}-X", "H", (19, f.exec_id)))
        if f.corrected:
            price, fee = f.corrected
            lines.append(
                report(
                    f"{f.exec_id}-C",
                    "G",
                    (19, f.exec_id),
                    (32, str(f.quantity)),
                    (31, str(price)),
                    (12, str(fee)),
                )
            )
    return lines


def report_ids(step: Step) -> list[str]:
    """The ExecIDs of the drop copy's distinct messages."""
    ids = [f"{step.client_order_id}-A"]
    for f in step.fills:
        ids.append(f.exec_id)
        if f.busted:
            ids.append(f"{f.exec_id}-X")
        if f.corrected:
            ids.append(f"{f.exec_id}-C")
    return ids


# ---- the ack file ------------------------------------------------------------------------------


def read_acks(path: Path) -> list[dict[str, Any]]:
    """The complete records of an ack file (a line cut short by a kill is not one)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines(keepends=True):
        if line.endswith("\n"):
            out.append(json.loads(line))
    return out


class Acks:
    def __init__(self, path: Path) -> None:
        if path.exists():  # drop a record a kill cut short: it was never acknowledged
            text = path.read_bytes()
            os.truncate(path, text.rfind(b"\n") + 1)  # one call: a kill cannot lose more
        self.records = read_acks(path)
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def add(self, **record: Any) -> None:
        os.write(self.fd, (json.dumps(record, sort_keys=True) + "\n").encode())
        os.fsync(self.fd)
        self.records.append(record)


# ---- the work ------------------------------------------------------------------------------


class Worker:
    def __init__(self, url: str, ack_path: Path, seed: int) -> None:
        submission.CHUNK = BATCH_GROUP  # several transactions per batch: kills land inside
        self.store = Store.open(url, check_schema=False)  # the test set it up
        self.acks = Acks(ack_path)
        self.seed = seed
        self.fix_dir = ack_path.parent / "fix"
        self.fix_dir.mkdir(exist_ok=True)

    def ctx(self) -> Ctx:
        return Ctx("kill-worker", datetime.now(UTC))

    def submit(self, step: Step) -> order_book.Submitted:
        req = order_book.OrderRequest(
            account=step.account,
            symbol=step.symbol,
            side=Side(step.side),
            quantity=step.quantity,
            type=OrdType.MARKET if step.limit is None else OrdType.LIMIT,
            tif=TimeInForce.DAY if step.kind == "market" else TimeInForce.GTC,
            limit_price=step.limit,
            client_order_id=step.client_order_id,
            venue=VENUE if step.kind == "external" else order_book.PAPER,
        )
        return order_book.submit(self.store, self.ctx(), req)

    def batch(self, step: Step, on_commit: Any = None) -> order_book.BatchResult:
        """The batch's orders through `submit_file`'s group commit (oms.submission.submit_many:
        the file's rows already parsed; the worker is forked from a process whose polars thread
        pool a fork does not carry over, so it reads no CSV)."""
        requests: list[order_book.OrderRequest | BadInput] = [
            order_book.OrderRequest(
                account=r.account,
                symbol=r.symbol,
                side=Side(r.side),
                quantity=r.quantity,
                client_order_id=r.client_order_id,
            )
            for r in batch_rows(step)
        ]
        out: list[order_book.BatchLine] = []

        def committed(start: int, outcomes: list[submission.Outcome]) -> None:
            out.extend(order_book._batch_line(start + k + 2, o) for k, o in enumerate(outcomes))
            if on_commit is not None:
                on_commit(start, outcomes)

        submission.submit_many(self.store, self.ctx(), requests, committed)
        return order_book.BatchResult(f"batch {step.index}", tuple(out))

    def do_batch(self, step: Step) -> None:
        def committed(start: int, outcomes: list[submission.Outcome]) -> None:
            rows = []
            for k, x in enumerate(outcomes):
                if x.order is None or x.error is not None or x.order.status.value != "filled":
                    raise AssertionError(f"batch {step.index} request {start + k}: {x}")
                rows.append(
                    {
                        "cid": x.order.client_order_id,
                        "order_id": x.order.order_id,
                        "dup": x.duplicate,
                        "fills": [
                            [f.exec_id, str(f.quantity), str(f.price)] for f in x.order.fills
                        ],
                    }
                )
            self.acks.add(op="batch", i=step.index, rows=rows)

        self.batch(step, committed)
        self.acks.add(op="submit", i=step.index, cid=step.client_order_id, batch=True)

    def do_submit(self, step: Step) -> None:
        if step.kind == "batch":
            self.do_batch(step)
            return
        done = self.submit(step)
        order = done.order
        want = {"market": "filled", "external": "pending_new", "rest": "new"}[step.kind]
        if not done.duplicate and order.status.value != want:
            raise AssertionError(f"{step}: submitted as {order.status.value}, expected {want}")
        self.acks.add(
            op="submit",
            i=step.index,
            cid=step.client_order_id,
            order_id=order.order_id,
            status=order.status.value,
            dup=done.duplicate,
            fills=[[f.exec_id, str(f.quantity), str(f.price)] for f in order.fills],
        )

    def apply(self, step: Step) -> order_book.ApplyResult:
        path = self.fix_dir / f"{step.index}.fix"
        path.write_text("\n".join(drop_copy(step)) + "\n")
        return order_book.apply_reports(self.store, self.ctx(), str(path))

    def do_apply(self, step: Step) -> None:
        result = self.apply(step)
        if result.refused:
            raise AssertionError(f"{step}: drop copy refused {result.refused}")
        self.acks.add(
            op="apply",
            i=step.index,
            applied=result.applied,
            duplicates=result.duplicates,
            exec_ids=report_ids(step),
        )

    def do_cancel(self, step: Step) -> None:
        with self.store.read() as conn:
            order = order_book.find(
                conn, None, account=step.account, client_order_id=step.client_order_id
            )
        if order.live:  # a cancel killed after its commit is not made twice
            order = order_book.cancel(
                self.store,
                self.ctx(),
                None,
                account=step.account,
                client_order_id=step.client_order_id,
            ).order
        if order.status.value != "canceled":
            raise AssertionError(f"{step}: {order.status.value} after cancel")
        self.acks.add(op="cancel", i=step.index, status=order.status.value)

    def finish(self, step: Step, done: set[tuple[str, int]]) -> None:
        """The parts of a step not acknowledged yet."""
        if ("submit", step.index) not in done:
            self.do_submit(step)
        if step.kind == "external" and ("apply", step.index) not in done:
            self.do_apply(step)
        if step.kind == "rest" and ("cancel", step.index) not in done:
            self.do_cancel(step)

    def replay(self) -> None:
        """Repeat acknowledged work: it must change nothing."""
        batches = [r for r in self.acks.records if r["op"] == "submit" and r.get("batch")][-1:]
        for rec in batches:  # the whole file again: every order a duplicate of the first
            again_batch = self.batch(plan(self.seed, rec["i"]))
            if again_batch.duplicates != BATCH:
                raise AssertionError(f"batch {rec['i']} again: {again_batch.as_json()}")
        submits = [r for r in self.acks.records if r["op"] == "submit" and not r.get("batch")][
            -REPLAYS:
        ]
        for rec in submits:
            again = self.submit(plan(self.seed, rec["i"]))
            if not again.duplicate or again.order.order_id != rec["order_id"]:
                raise AssertionError(f"repeating {rec['cid']} gave {again}, acked {rec}")
        applies = [r for r in self.acks.records if r["op"] == "apply"][-1:]
        for rec in applies:
            result = self.apply(plan(self.seed, rec["i"]))
            if result.applied or result.refused or result.duplicates != result.messages:
                raise AssertionError(f"applying step {rec['i']} again: {result}")
        self.acks.add(op="replay", submits=len(submits), applies=len(applies))

    def run(self, max_steps: int, recover_only: bool) -> None:
        records = self.acks.records
        done = {(r["op"], r["i"]) for r in records if "i" in r}
        last = max((r["i"] for r in records if r["op"] == "submit"), default=-1)
        self.acks.add(op="start", pid=os.getpid(), last=last)
        if last >= 0:
            self.finish(plan(self.seed, last), done)
        self.replay()
        stop = last + 2 if recover_only else max_steps
        for index in range(last + 1, stop):
            self.finish(plan(self.seed, index), set())
        self.acks.add(op="stop", pid=os.getpid())


def run(
    url: str, ack_file: str, seed: int, max_steps: int = 10**9, recover_only: bool = False
) -> None:
    """The process entry point: exit status 0 when done, 1 (with the reason in
    ACK_FILE.error) when a check failed."""
    try:
        Worker(url, Path(ack_file), seed).run(max_steps, recover_only)
    except BaseException:
        Path(ack_file + ".error").write_text(traceback.format_exc())
        os._exit(1)


if __name__ == "__main__":
    run(
        sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 10**9
    )
