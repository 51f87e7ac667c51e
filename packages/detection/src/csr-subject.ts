import { CertificationRequest } from '@peculiar/asn1-csr';
import { AsnConvert } from '@peculiar/asn1-schema';

/** The subject of a CertificateSigningRequest: who the issued client certificate authenticates as. */
export interface CsrSubject {
  /** CN: the username the API server takes from the certificate. */
  commonName?: string;
  /** O: the groups (`system:masters` is cluster-admin that no RBAC change can take away). */
  organizations: string[];
}

const COMMON_NAME = '2.5.4.3';
const ORGANIZATION = '2.5.4.10';
/** A CSR is a few hundred bytes to a few KiB; anything much larger is not parsed. */
const MAX_REQUEST_CHARS = 64 * 1024;
const PEM =
  /-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----([A-Za-z0-9+/=\s]+)-----END (?:NEW )?CERTIFICATE REQUEST-----/;

/**
 * A CSR's `spec.request` (base64 of a PEM PKCS#10 request, as the API server logs it) -> its subject,
 * or undefined for anything that is not one. Pure; the DER is decoded by @peculiar/asn1-csr, which
 * throws on malformed input (caught here: a bad request is no subject, never an error).
 */
export function csrSubject(request: unknown): CsrSubject | undefined {
  if (typeof request !== 'string' || request.length === 0 || request.length > MAX_REQUEST_CHARS)
    return undefined;
  const pem = PEM.exec(Buffer.from(request, 'base64').toString('latin1'));
  if (!pem) return undefined;
  try {
    const der = Buffer.from(pem[1]!.replace(/\s+/g, ''), 'base64');
    const parsed = AsnConvert.parse(der, CertificationRequest);
    const subject: CsrSubject = { organizations: [] };
    for (const rdn of parsed.certificationRequestInfo.subject)
      for (const attribute of rdn) {
        const value = attribute.value.toString();
        if (attribute.type === COMMON_NAME) subject.commonName ??= value;
        else if (attribute.type === ORGANIZATION) subject.organizations.push(value);
      }
    return subject;
  } catch {
    return undefined;
  }
}
