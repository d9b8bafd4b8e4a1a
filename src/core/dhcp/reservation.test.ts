import { describe, expect, it } from 'vitest';
import { dnsmasqHostFileName, dnsmasqHostLine, hostElementXml, parseDnsmasqHosts, parseNetworkDhcpHosts, staleEntries, validateReservation } from './reservation.js';

const NET = `<network>
  <name>lab</name>
  <dns><host ip='10.20.0.5'><hostname>web1</hostname></host></dns>
  <ip address='10.20.0.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='10.20.0.100' end='10.20.0.200'/>
      <host mac='52:54:00:AA:BB:01' name='web1' ip='10.20.0.5'/>
      <host name='printer' ip='10.20.0.7'>
        <lease expiry='1' unit='hours'/>
      </host>
      <host mac="52:54:00:aa:bb:03" name="a&amp;b" ip="10.20.0.8"/>
    </dhcp>
  </ip>
  <ip family='ipv6' address='fd00::1' prefix='64'>
    <dhcp><host id='0:4:7e:7d:f0:7d' name='web1' ip='fd00::5'/></dhcp>
  </ip>
</network>`;

describe('dhcp reservations', () => {
  it('reads the IPv4 DHCP hosts of a network, not DNS hosts or IPv6 ones', () => {
    expect(parseNetworkDhcpHosts(NET)).toEqual([
      { mac: '52:54:00:aa:bb:01', name: 'web1', ip: '10.20.0.5' },
      { name: 'printer', ip: '10.20.0.7' },
      { mac: '52:54:00:aa:bb:03', name: 'a&b', ip: '10.20.0.8' },
    ]);
  });
  it('renders host elements with what is present, escaped', () => {
    expect(hostElementXml({ mac: '52:54:00:aa:bb:01', name: 'web1', ip: '10.20.0.5' })).toBe("<host mac='52:54:00:aa:bb:01' name='web1' ip='10.20.0.5'/>");
    expect(hostElementXml({ name: "a'b&c", ip: '10.20.0.7' })).toBe("<host name='a&apos;b&amp;c' ip='10.20.0.7'/>");
  });
  it('finds stale entries sharing MAC, name or IP', () => {
    const entries = parseNetworkDhcpHosts(NET);
    const r = validateReservation({ mac: '52:54:00:AA:BB:01', ip: '10.20.0.7', name: 'web9' });
    expect(staleEntries(entries, r)).toEqual([entries[0], entries[1]]);
    expect(staleEntries(entries, { mac: '52:54:00:aa:bb:01', ip: '10.20.0.5', name: 'web1' })).toEqual([]);
  });
  it('validates', () => {
    expect(() => validateReservation({ mac: 'xx', ip: '10.0.0.1', name: 'a' })).toThrow(/not a MAC/);
    expect(() => validateReservation({ mac: '52:54:00:aa:bb:01', ip: '10.0.0.300', name: 'a' })).toThrow(/not an IPv4/);
    expect(() => validateReservation({ mac: '52:54:00:aa:bb:01', ip: '10.0.0.3', name: 'a b' })).toThrow(/host name/i);
  });
  it('writes and reads dnsmasq hostsdir lines', () => {
    const r = validateReservation({ mac: '52-54-00-AA-BB-01', ip: '10.20.0.5', name: 'web1' });
    expect(dnsmasqHostLine(r)).toBe('52:54:00:aa:bb:01,10.20.0.5,web1\n');
    expect(dnsmasqHostFileName('web1')).toBe('web1.conf');
    expect(() => dnsmasqHostFileName('../x')).toThrow(/cannot name/);
    expect(parseDnsmasqHosts('# c\n52:54:00:aa:bb:01,10.20.0.5,web1\nweb2,10.20.0.6,52:54:00:aa:bb:02,12h\n')).toEqual([
      { mac: '52:54:00:aa:bb:01', ip: '10.20.0.5', name: 'web1' },
      { name: 'web2', ip: '10.20.0.6', mac: '52:54:00:aa:bb:02' },
    ]);
  });
});
