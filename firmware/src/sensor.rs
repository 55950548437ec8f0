//! Sensor input over `embedded_hal::i2c::I2c`: a small driver for an LSM6DS3-class 6-axis IMU
//! and [`ReplayBus`], an I2C bus that plays such a device back from embedded samples, so the
//! firmware runs unchanged in QEMU. On a real board, pass the HAL's I2C peripheral instead.

use embedded_hal::i2c::{self, ErrorKind, I2c, NoAcknowledgeSource, Operation, SevenBitAddress};

/// One IMU reading in the order of Tandem's IMU data set: `[ax, ay, az, wx, wy, wz]`
/// (accelerometer, then gyroscope), raw signed 16-bit counts.
pub type Sample = [i16; 6];

/// The IMU's default 7-bit I2C address (SA0 pulled low).
pub const IMU_ADDRESS: u8 = 0x6A;

const WHO_AM_I: u8 = 0x0F;
const EXPECTED_ID: u8 = 0x69;
const CTRL1_XL: u8 = 0x10;
const CTRL2_G: u8 = 0x11;
/// 104 Hz output data rate in CTRL1_XL / CTRL2_G (ODR bits 7:4 = 0b0100).
const ODR_104_HZ: u8 = 0x40;
/// First of the 12 output registers: gyroscope X/Y/Z, then accelerometer X/Y/Z, little-endian.
const OUTX_L_G: u8 = 0x22;
const OUTPUT_LEN: usize = 12;

/// Why a sensor read failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SensorError<E> {
    /// The bus transaction failed.
    Bus(E),
    /// The device at the address answered with another identity than an LSM6DS3's.
    UnexpectedId(u8),
}

impl<E: i2c::Error> defmt::Format for SensorError<E> {
    fn format(&self, f: defmt::Formatter) {
        match self {
            SensorError::Bus(e) => defmt::write!(f, "I2C bus error: {}", kind_name(e.kind())),
            SensorError::UnexpectedId(id) => defmt::write!(f, "unexpected WHO_AM_I {=u8:#04x}", id),
        }
    }
}

fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Bus => "bus",
        ErrorKind::ArbitrationLoss => "arbitration loss",
        ErrorKind::NoAcknowledge(_) => "no acknowledge",
        ErrorKind::Overrun => "overrun",
        _ => "other",
    }
}

/// A 6-axis IMU on an I2C bus, generic over any `embedded-hal` 1.0 I2C implementation.
pub struct Imu<B> {
    bus: B,
    address: SevenBitAddress,
}

impl<B: I2c> Imu<B> {
    /// Checks the device's identity and starts both sensors at 104 Hz.
    pub fn new(mut bus: B, address: SevenBitAddress) -> Result<Self, SensorError<B::Error>> {
        let mut id = [0u8];
        bus.write_read(address, &[WHO_AM_I], &mut id).map_err(SensorError::Bus)?;
        if id[0] != EXPECTED_ID {
            return Err(SensorError::UnexpectedId(id[0]));
        }
        bus.write(address, &[CTRL1_XL, ODR_104_HZ, ODR_104_HZ]).map_err(SensorError::Bus)?;
        Ok(Self { bus, address })
    }

    /// Reads the latest sample (one 12-byte burst from the output registers).
    pub fn read(&mut self) -> Result<Sample, SensorError<B::Error>> {
        let mut raw = [0u8; OUTPUT_LEN];
        self.bus.write_read(self.address, &[OUTX_L_G], &mut raw).map_err(SensorError::Bus)?;
        let word = |i: usize| i16::from_le_bytes([raw[2 * i], raw[2 * i + 1]]);
        // Registers hold gyro then accel; the data set's order is accel then gyro.
        Ok([word(3), word(4), word(5), word(0), word(1), word(2)])
    }

    /// Gives the bus back.
    pub fn release(self) -> B {
        self.bus
    }
}

/// Errors of the replayed bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayError {
    /// Nothing answers at that address.
    NoDevice,
    /// Every embedded sample has been read.
    Exhausted,
}

impl i2c::Error for ReplayError {
    fn kind(&self) -> ErrorKind {
        match self {
            ReplayError::NoDevice => ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address),
            ReplayError::Exhausted => ErrorKind::Other,
        }
    }
}

/// An I2C bus with one LSM6DS3-like device that replays `samples`, one per burst read of the
/// output registers. Register writes land in a register file; the device's output registers
/// stay zero until both sensors are given a data rate, as on the real part.
pub struct ReplayBus {
    address: SevenBitAddress,
    registers: [u8; 0x80],
    pointer: u8,
    samples: &'static [Sample],
    next: usize,
}

impl ReplayBus {
    /// A bus whose device at `address` replays `samples` in order.
    pub fn new(address: SevenBitAddress, samples: &'static [Sample]) -> Self {
        let mut registers = [0u8; 0x80];
        registers[usize::from(WHO_AM_I)] = EXPECTED_ID;
        Self { address, registers, pointer: 0, samples, next: 0 }
    }

    /// How many samples have been replayed.
    pub fn replayed(&self) -> usize {
        self.next
    }

    fn running(&self) -> bool {
        self.registers[usize::from(CTRL1_XL)] >> 4 != 0 && self.registers[usize::from(CTRL2_G)] >> 4 != 0
    }

    /// Latches the next sample into the output registers (gyro first, as the part lays them out).
    fn latch_next(&mut self) -> Result<(), ReplayError> {
        let sample = self.samples.get(self.next).ok_or(ReplayError::Exhausted)?;
        self.next += 1;
        let ordered = [sample[3], sample[4], sample[5], sample[0], sample[1], sample[2]];
        for (i, value) in ordered.iter().enumerate() {
            let at = usize::from(OUTX_L_G) + 2 * i;
            self.registers[at..at + 2].copy_from_slice(&value.to_le_bytes());
        }
        Ok(())
    }

    fn advance(&mut self) {
        self.pointer = (self.pointer + 1) & 0x7F;
    }
}

impl i2c::ErrorType for ReplayBus {
    type Error = ReplayError;
}

impl I2c for ReplayBus {
    fn transaction(
        &mut self,
        address: SevenBitAddress,
        operations: &mut [Operation<'_>],
    ) -> Result<(), Self::Error> {
        if address != self.address {
            return Err(ReplayError::NoDevice);
        }
        for operation in operations {
            match operation {
                Operation::Write(bytes) => {
                    if let Some((&register, data)) = bytes.split_first() {
                        self.pointer = register & 0x7F;
                        for &byte in data {
                            self.registers[usize::from(self.pointer)] = byte;
                            self.advance();
                        }
                    }
                }
                Operation::Read(buffer) => {
                    if self.pointer == OUTX_L_G && self.running() {
                        self.latch_next()?;
                    }
                    for byte in buffer.iter_mut() {
                        *byte = self.registers[usize::from(self.pointer)];
                        self.advance();
                    }
                }
            }
        }
        Ok(())
    }
}
