*** Comments ***
Runs a microtile test firmware in Renode and checks what it prints on the console UART.

The firmware is built with the UART console and the inputs compiled in
(make CONSOLE=uart EXTRA_CFLAGS=-DMT_EMBEDDED_INPUTS, linked for the real part); it prints
    MT_BEGIN ... / MT_OUT <i> <hex> / MT_RESULT <i> rc=<n> instructions=<n> stack=<n> / MT_END <n> / MT_DONE
and then sleeps forever. Run it with renode-test:
    renode-test --variable ELF:/abs/firmware.elf --variable BOARD:stm32f405 --variable INPUTS:3 renode/microtile.robot
(`microtile run --emulator renode` does this and compares every output byte with the reference).

Renode's keyword bridge can take a `name=value` argument for a named one, so strings that
contain '=' are matched as regular expressions with '.' in its place.


*** Settings ***
Suite Setup         Setup
Suite Teardown      Teardown
Test Teardown       Test Teardown
Resource            ${RENODEKEYWORDS}
Library             String


*** Variables ***
# The firmware ELF (absolute path): required.
${ELF}              ${EMPTY}
# stm32f405 | stm32f746g-disco | stm32h743: selects ${CURDIR}/${BOARD}-machine.resc.
${BOARD}            stm32f405
# How many inputs the firmware holds (mt_inputs.c).
${INPUTS}           1
# Seconds of emulated time to wait for each line.
${TIMEOUT}          120
# The console UART: USART1 on both boards (see the [console] table of boards/<board>.toml).
${UART}             sysbus.usart1
# When set, everything the UART prints is also written to this file (parsed by run_renode.py).
${UART_LOG}         ${EMPTY}
# SysTick clock (Hz) of the firmware build: the board's cpu_clock_hz (run_renode.py passes it from
# boards/<board>.toml); empty keeps the machine script's default, which is the same number.
${SYSTICK_HZ}       ${EMPTY}
# Emulated instructions per virtual microsecond: 1000 = one per ns, so the firmware's
# ticks * 1e9 / SYSTICK_HZ is the instruction count (renode/README.md).
${MIPS}             1000


*** Test Cases ***
Firmware Runs Every Input To MT_DONE With Status 0
    Create Microtile Machine
    Start Emulation
    Wait For Line On Uart    MT_BEGIN
    FOR    ${i}    IN RANGE    ${INPUTS}
        Wait For Line On Uart    ^MT_OUT ${i} [0-9a-f]+    treatAsRegex=true
        ${result}=    Wait For Line On Uart    ^MT_RESULT ${i} rc.    treatAsRegex=true
        Should Match Regexp    ${result.Line}    MT_RESULT ${i} rc.0 instructions    invoke of input ${i} failed: ${result.Line}
    END
    Wait For Line On Uart    MT_END ${INPUTS}
    Wait For Line On Uart    MT_DONE


*** Keywords ***
Create Microtile Machine
    Should Not Be Empty    ${ELF}    pass the firmware: renode-test --variable ELF:/abs/path/firmware.elf ...
    ${elf}=    Renode Path    ${ELF}
    ${dir}=    Renode Path    ${CURDIR}
    Execute Command    set elf ${elf}
    IF    '${SYSTICK_HZ}' != ''
        Execute Command    set systick_hz ${SYSTICK_HZ}
    END
    Execute Command    set mips ${MIPS}
    Execute Command    include ${dir}/${BOARD}-machine.resc
    IF    '${UART_LOG}' != ''
        ${log}=    Renode Path    ${UART_LOG}
        Execute Command    ${UART} CreateFileBackend ${log} true
    END
    Create Terminal Tester    ${UART}    timeout=${TIMEOUT}

Renode Path
    [Documentation]    A path as Renode's monitor reads it: @ and every space escaped (its PathToken).
    [Arguments]    ${path}
    ${escaped}=    Replace String    ${path}    ${SPACE}    \\${SPACE}
    RETURN    @${escaped}
