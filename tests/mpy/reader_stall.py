"""How long the RC522 driver holds the event loop while it looks for a card in an empty field.

usage: micropython -X heapsize=100k -m reader_stall MODE SECONDS
MODE none: no reader at all, the floor of this machine's loop; irq: the driver awaits the chip's IRQ line (the virtual board fires the chip's timer
on time: sim.mfrc522.fire_timer_on_time, as sim/board.py wires it); poll: no IRQ pin, the driver polls ComIrqReg between
yields; sync: detect() as authorise and the card writer call it, holding the loop for
the REQA's wait. The real driver runs against the virtual MFRC522 in this process, in
the terminal's loop shape (a poll, then POLL_MS asleep). A ticker task asks for 1 ms
sleeps and records how late each one wakes: the loop's stalls. Prints key=value lines.
"""

import asyncio
import gc
import sys
import time

from sim.mfrc522 import VirtualMFRC522, fire_timer_on_time
from sim.mifare import Field
from terminal.rc522 import RC522

POLL_MS = 50    # terminal/app.py
gc.threshold(16384)     # as firmware/boot.py sets it on the ESP32
mode = sys.argv[1]
seconds = int(sys.argv[2])

chip = VirtualMFRC522(Field())
fire_timer_on_time(chip)
reader = RC522(chip.spi, chip.cs, irq=chip.irq if mode == "irq" else None)
reader.init()
BUCKET_US = 100
# Lateness histograms, 0.1 ms buckets (no allocation while measuring): the ticks a poll ran
# in, and all ticks. The first shows what the reader costs the loop, the machine's own noise
# (other processes on shared cores) aside; the second's maximum is the longest stall seen.
during = [0] * 512
every = [0] * 512
stall_max_us = 0
poll_stall_max_us = 0
polls = 0
running = True


async def ticker():
    """Ask for 1 ms sleeps and file how late each wakes."""
    global stall_max_us, poll_stall_max_us
    while running:
        p0 = polls
        t0 = time.ticks_us()
        await asyncio.sleep_ms(1)
        late = max(0, time.ticks_diff(time.ticks_us(), t0) - 1000)
        bucket = min(late // BUCKET_US, 511)
        every[bucket] += 1
        if polls != p0:
            during[bucket] += 1
            poll_stall_max_us = max(poll_stall_max_us, late)
        if late > stall_max_us:
            stall_max_us = late


async def reader_loop():
    """Look for a card the way the terminal does: a poll, then POLL_MS asleep."""
    global polls
    while running:
        if mode == "none":
            found = False
        elif mode == "sync":
            found = reader.detect()
        else:
            found = await reader.poll_card()
        if found:
            raise SystemExit("reader_stall: a card answered in an empty field")
        polls += 1
        chip.log.clear()    # the emulator's own record of frames would fill the heap
        await asyncio.sleep_ms(POLL_MS)


async def main():
    """Run ticker and reader for the given seconds; return the SPI transactions they made."""
    global running
    gc.collect()
    tick = asyncio.create_task(ticker())
    poll = asyncio.create_task(reader_loop())
    spi0 = chip.spi_transactions
    await asyncio.sleep_ms(seconds * 1000)
    running = False
    await tick
    await poll
    return chip.spi_transactions - spi0


def quantile_us(buckets, q):
    """The lateness below which a fraction q of the samples fall, to the bucket's upper edge."""
    total = sum(buckets)
    seen = 0
    for i in range(len(buckets)):
        seen += buckets[i]
        if seen >= total * q:
            return (i + 1) * BUCKET_US
    return len(buckets) * BUCKET_US


spi = asyncio.run(main())
gc.collect()
t0 = time.ticks_us()
gc.collect()
gc_us = time.ticks_diff(time.ticks_us(), t0)
print("mode=%s polls=%d spi_per_poll=%d samples=%d" % (mode, polls, spi // max(polls, 1), sum(every)))
print("poll_stall_median_us=%d poll_stall_p90_us=%d poll_stall_max_us=%d" % (
    quantile_us(during, 0.5), quantile_us(during, 0.9), poll_stall_max_us))
print("stall_max_us=%d stall_p99_us=%d gc_collect_us=%d" % (stall_max_us, quantile_us(every, 0.99), gc_us))
