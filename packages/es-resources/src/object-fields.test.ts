import { fitsObjectMapping } from './object-fields';

describe('es-resources > request/response bodies against the mapped sub-fields', () => {
  it.each([
    [undefined, true],
    [{}, true],
    [{ spec: { containers: [{ image: 'nginx', securityContext: { privileged: true } }] } }, true],
    [{ spec: { hostPID: 'true', type: 3 } }, true],
    [{ rules: [{ verbs: ['get', 'list'], resources: ['secrets'] }] }, true],
    [{ unmapped: { anything: [1, { deep: true }] } }, true],
    ['a string body', false],
    [['an', 'array'], false],
    [{ spec: { type: { nested: 'object' } } }, false],
    [{ spec: { hostPID: 'yes' } }, false],
    [{ spec: { containers: ['not-an-object'] } }, false],
    [{ spec: 'scalar where an object is mapped' }, false],
    [{ rules: [{ verbs: [{ not: 'a keyword' }] }] }, false],
  ])('%j fits: %s', (body, fits) => {
    expect(fitsObjectMapping(body)).toBe(fits);
  });
});
