export type * from './model.js';
export { buildDomainXml, validateDomainModel } from './build.js';
export { domainModelFor, type DirectKernelBoot, type DomainInput } from './defaults.js';
export { readDomainFacts, type DomainFacts } from './facts.js';
