"""Constants shared by the HTML and JSON codec tests: one sample project, its index URLs and some sha256s."""

from __future__ import annotations

from pathlib import Path

from proxy.simple.names import NormalizedName

DATA = Path(__file__).parent / "data"
NAME = NormalizedName("sampleproject")
PAGE_URL = "https://pypi.org/simple/sampleproject/"
FILES = "https://files.pythonhosted.org/packages"
SHA_A = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
SHA_B = "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d"
SHA_C = "2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6"
SHA_D = "18ac3e7343f016890c510e93f935261169d9e3f565436429830faf0934f4f8e4"
SHA_E = "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea"
SHA_F = "252f10c83610ebca1a059c0bae8255eba2f95be4d1d7bcfa89d7248a82d9f111"
SHA_G = "cd0aa9856147b6c5b4ff2b7dfee5da20aa38253099ef1b4a64aced233c9afe29"
WHEEL = "demo-1.0-py3-none-any.whl"
