"""`parkcard member` and `parkcard card lost|found` from the CLI on SQLite and PostgreSQL: a member found by phone,
number or card, a loss by member blacklisted at once, its un-report, and clear refusals without a traceback."""

from test_credits_cli_api import cli, issued_card


def run(workdir, db, *args):
    return cli(workdir, db, *[str(a) for a in args])


def test_a_member_their_card_its_loss_and_its_un_report_from_the_cli(tmp_path, store_url):
    card_no = issued_card(tmp_path, store_url)
    added = run(tmp_path, store_url, "member", "add", "--name", "Li Wei", "--phone", "+86 138-0000-1234",
                "--tier", "gold", "--note", "season pass")
    assert added.returncode == 0 and "member 1001: Li Wei, phone +8613800001234, tier 2" in added.stdout, added.stderr
    again = run(tmp_path, store_url, "member", "add", "--name", "Wang", "--phone", "+8613800001234")
    assert again.returncode == 2 and "member 1001's (Li Wei)" in again.stderr and "Traceback" not in again.stderr
    bad = run(tmp_path, store_url, "member", "add", "--name", "Wang", "--phone", "call me")
    assert bad.returncode == 2 and "is not a phone number" in bad.stderr
    shown = run(tmp_path, store_url, "member", "show", "--phone", "13800001234")
    assert shown.returncode == 2 and "no member has phone 13800001234" in shown.stderr
    shown = run(tmp_path, store_url, "member", "show", "--phone", "+86 13800001234")
    assert shown.returncode == 0 and "Li Wei" in shown.stdout and "(season pass)" in shown.stdout
    assert "Li Wei" in run(tmp_path, store_url, "member", "list").stdout
    tier = run(tmp_path, store_url, "member", "tier", 1001, "platinum")
    assert tier.returncode == 2 and "no tier is called 'platinum'" in tier.stderr
    assert run(tmp_path, store_url, "member", "tier", 1001, "silver").returncode == 0
    none = run(tmp_path, store_url, "card", "lost", "--member", 1001)
    assert none.returncode == 2 and "member 1001 has no card in use" in none.stderr
    lost = run(tmp_path, store_url, "card", "lost", card_no, "--reason", "lost at the lake")
    assert lost.returncode == 0 and "card %d reported lost (blacklist version 1)" % card_no in lost.stdout
    assert str(card_no) in run(tmp_path, store_url, "blacklist").stdout
    show = run(tmp_path, store_url, "card", "show", card_no).stdout
    assert "blacklisted" in show and "reported lost" in show and "lost at the lake" in show
    found = run(tmp_path, store_url, "card", "found", card_no)
    assert found.returncode == 0 and "no longer reported lost" in found.stdout
    assert str(card_no) not in run(tmp_path, store_url, "blacklist").stdout
    twice = run(tmp_path, store_url, "card", "found", card_no)
    assert twice.returncode == 2 and "card %d is found" % card_no in twice.stderr
    unknown = run(tmp_path, store_url, "card", "lost", card_no + 1)
    assert unknown.returncode == 2 and "was never issued here" in unknown.stderr
