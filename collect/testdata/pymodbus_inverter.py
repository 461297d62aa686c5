#!/usr/bin/python3
"""A Sungrow hybrid inverter's input registers, served by pymodbus (Debian's
python3-pymodbus): an implementation that is not ours, for `collect --once`.

usage: pymodbus_inverter.py PORT day|night
"""
import sys

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.server import StartTcpServer

port, scenario = int(sys.argv[1]), sys.argv[2]
regs = [0] * 14000
regs[4989:4992] = [ord("A") << 8 | ord("B"), ord("1") << 8 | ord("2"), ord("3") << 8]
regs[4999] = 0x0E0F
if scenario == "day":  # charging 8500 W, exporting 60000 W, 70000 W PV, 25.3 C
    regs[5016:5018] = [0x1170, 0x0001]
    regs[13000:13002] = [0x2, 123]
    regs[13007:13011] = [1500, 0, 60000, 0]
    regs[13021], regs[13022], regs[13024] = 8500, 655, 253
else:  # discharging 2000 W, importing 2345 W, no PV, -5.5 C
    regs[13000:13002] = [0x4, 123]
    regs[13007:13011] = [4345, 0, 0xF6D7, 0xFFFF]
    regs[13021], regs[13022], regs[13024] = 2000, 201, 0xFFC9
# zero_mode: request address N is block index N, as Sungrow's 0-based addresses are.
store = ModbusSlaveContext(ir=ModbusSequentialDataBlock(0, regs), zero_mode=True)
StartTcpServer(context=ModbusServerContext(slaves=store, single=True), address=("127.0.0.1", port))
