package scripts

import "strings"

// Slot is the Redis Cluster hash slot of key: CRC16 (XMODEM) of its hash
// tag — what lies between the first '{' and the first '}' after it, when
// not empty — or of the whole key, modulo 16384. Keys of one slot may be
// touched by one script call.
func Slot(key string) uint16 {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if end := strings.IndexByte(key[open+1:], '}'); end > 0 {
			key = key[open+1 : open+1+end]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for b := 0; b < 8; b++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc & 16383
}
