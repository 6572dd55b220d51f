"""What the board is, read through esptool before anything is written: chip, features, flash, PSRAM.

`esptool flash-id` connects to the ROM bootloader and prints the chip
description and features from the eFuses (esptool's get_chip_description and
get_chip_features) and the flash size from the flash chip's JEDEC id. From
them the terminal's heap class follows:

- ESP32 without PSRAM (ESP32-WROOM-32, ESP32-D0WD*): MicroPython ESP32_GENERIC
  gives the application about 110 KB of heap; the whole terminal fits it with its
  code in a ROMFS partition (ESP32_GENERIC's ROMFS variant, romfs.py), not as files.
- ESP32 with PSRAM: the ESP32_GENERIC-SPIRAM build puts the heap in PSRAM (MBs).
  esptool sees PSRAM inside the package only (ESP32-D0WDR2-V3, ESP32-PICO-V3-02:
  "Embedded PSRAM"); the separate PSRAM chip of an ESP32-WROVER module is not on
  the eFuses, so such a board reads as "no PSRAM seen" here.
"""

import re

_DESCRIPTION = re.compile(r"^(?:Chip type:\s+|Chip is )(.+?)\s*$", re.M)   # esptool 5 / esptool 4
_FEATURES = re.compile(r"^Features:\s+(.+?)\s*$", re.M)
_FLASH_SIZE = re.compile(r"^Detected flash size:\s+(\S+)", re.M)
_OTHER_CHIPS = ("ESP32-S", "ESP32-C", "ESP32-H", "ESP32-P4")  # not ESP32-PICO: a classic ESP32 in a package
# Packages with PSRAM in them (esptool targets/esp32.py get_chip_description): D0WDR2 = 2 MB.
_PSRAM_PACKAGES = ("ESP32-D0WDR2", "ESP32-PICO-V3-02")
HEAP_NO_PSRAM = ("about 110 KB of MicroPython heap (ESP32 without PSRAM; flash ESP32_GENERIC's ROMFS variant, so "
                 "that the code runs from flash)")
HEAP_PSRAM = "MicroPython heap in PSRAM, several MB (ESP32 with PSRAM; flash ESP32_GENERIC-SPIRAM)"


def parse(stdout):
    """{"description", "features" (list), "flash_size", "psram" (bool)} from `esptool flash-id`'s output."""
    description = _DESCRIPTION.search(stdout)
    features = _FEATURES.search(stdout)
    flash_size = _FLASH_SIZE.search(stdout)
    chip = {"description": description.group(1) if description else "",
            "features": [f.strip() for f in features.group(1).split(",")] if features else [],
            "flash_size": flash_size.group(1) if flash_size else "unknown"}
    chip["psram"] = (any("PSRAM" in f for f in chip["features"])
                     or chip["description"].startswith(_PSRAM_PACKAGES))
    return chip


def problems(chip):
    """Why this board cannot be a terminal (an empty list when it can)."""
    if not chip["description"]:
        return ["esptool did not say which chip this is: is it an ESP32 board in its bootloader?"]
    if chip["description"].startswith(_OTHER_CHIPS) or not chip["description"].startswith("ESP32"):
        return ["%s is not a classic ESP32: the terminal image and pins are for an ESP32-WROOM-32 (or a "
                "WROVER)" % chip["description"]]
    return []


def heap_class(chip):
    """The sentence the tool prints about the heap the terminal will have."""
    return HEAP_PSRAM if chip["psram"] else HEAP_NO_PSRAM


def report(chip, firmware_name=""):
    """What the technician reads after the chip was read: chip, flash, PSRAM, heap class, firmware fit."""
    lines = ["chip: %s, flash %s, %s" % (chip["description"], chip["flash_size"],
                                          "PSRAM" if chip["psram"] else "no PSRAM seen by esptool"),
             "heap: " + heap_class(chip)]
    spiram = "SPIRAM" in firmware_name.upper()
    if chip["psram"] and firmware_name and not spiram:
        lines.append("note: %s is not a SPIRAM build: the PSRAM stays unused and the heap is about 110 KB"
                     % firmware_name)
    elif not chip["psram"] and spiram:
        lines.append("warning: %s is a SPIRAM build and esptool sees no PSRAM: unless this is a WROVER "
                     "module, flash ESP32_GENERIC instead" % firmware_name)
    return "\n".join(lines)
