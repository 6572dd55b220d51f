"""A staff shift on real MicroPython: a staff card opens it, a sale carries its tag, the sale is reversed with the
staff card, the shift closes with its totals (terminal/shift.py, terminal/reversal.py: what roles/pos.py does),
with the real driver on the virtual RC522 and the journal and counters in littlefs.

usage: micropython -X heapsize=100k staff_shift_check.py WORKDIR CHIP_PORT
The chip server holds card 0, a staff card, and card 1, a wallet. Prints key=value lines.
"""

import gc
import sys

gc.collect()
gc.threshold(16384)  # as firmware/boot.py sets it on the ESP32

from sim.flash import FileBlockDevice, mount_littlefs

workdir = sys.argv[1]
port = int(sys.argv[2])
NOW = 1795600000
device = FileBlockDevice(workdir + "/flash.bin", 4096, 256)
mount_littlefs(device, "/flash", format=True)

from protocol import card_issue
from protocol import staff as S
from protocol.config import Config
from protocol.record import KIND_REVERSAL, RECORD_SIZE, Record, record_mac_for
from sim.spi_link import ChipLink, LinkedPin, LinkedSpi
from terminal.blacklist import Blacklist
from terminal.journal import Journal
from terminal.rc522 import RC522
from terminal.shift import Shift
from terminal.wallet import Wallet

PARK = card_issue.ParkKeys(b"A" * 32, b"B" * 32, b"C" * 32)
journal = Journal("/flash/journal", RECORD_SIZE, 8192, 16)
link = ChipLink("127.0.0.1", port)
reader = RC522(LinkedSpi(link), LinkedPin(link))
reader.init()
wallet = Wallet(reader, journal, Blacklist("/flash/blacklist"), 7, record_mac_for(b"K" * 32), lambda: NOW)
wallet.park_keys = PARK
wallet.config = Config(version=1, category=0, tx_cap_cents=0, daily_cap_cents=0)
wallet.last_hub_contact_s = NOW
wallet.blacklist_updated_s = NOW
shift = Shift("/flash/shift")

gc.collect()
heap_idle = gc.mem_alloc()
peak = [0]


def measured(step):
    """Run step() with the collector held off; keep the largest heap above idle it took."""
    gc.collect()
    gc.threshold(-1)
    got = step()
    peak[0] = max(peak[0], gc.mem_alloc() - heap_idle)
    gc.threshold(16384)
    return got


from terminal import reversal as rv    # what roles/pos.py loads at the first staff tap

link.control("add 0")
staff = measured(lambda: rv.read_staff(wallet))
measured(lambda: shift.open(wallet, staff.info, staff.uid, NOW))
link.control("remove 0")
link.control("add 1")
wallet.shift_tag = shift.tag
sale = measured(lambda: wallet.debit(450))
shift.count(sale, NOW)          # counted in memory; the power goes before the save
link.control("remove 1")
journal.close()
journal = Journal("/flash/journal", RECORD_SIZE, 8192, 16)      # the start after the power cut
wallet.journal = journal
shift = Shift("/flash/shift")
from terminal import shift_recovery    # what roles/pos.py loads when the journal is ahead
recovered = measured(lambda: shift_recovery.recover(shift, journal))
print("recovered=%d totals=%d,%d" % (recovered, shift.totals.sales, shift.totals.sales_cents))
link.control("add 1")
back = measured(lambda: rv.reverse(wallet, rv.shift_sale(shift, sale.seq), staff.card_no, staff.uid, NOW))
shift.counted(back, NOW, reversal=True, sale_seq=sale.seq)
link.control("remove 1")
link.control("add 0")
measured(lambda: shift.close(wallet, staff.uid, NOW))
link.control("remove 0")
recs = [Record.decode(raw) for _seq, _status, raw in journal.unsynced(8)]
reversal = [r for r in recs if r.kind == KIND_REVERSAL][0]
closing = recs[-1]
print("staff_ok=%d" % (staff.ok and staff.card_no == 900))
print("sale_ok=%d tag=%d" % (sale.ok, S.tag_of(recs[1])))
print("reversal_ok=%d sale_seq=%d" % (back.ok, S.reversal_of(reversal)[0]))
t = S.shift_fields(closing)[2]
print("closing_totals=%d,%d,%d,%d" % (t.sales, t.sales_cents, t.reversals, t.reversals_cents))
print("balance_after=%d" % back.balance_cents)
print("heap_peak_above_idle=%d" % peak[0])
print("heap_idle=%d" % heap_idle)
