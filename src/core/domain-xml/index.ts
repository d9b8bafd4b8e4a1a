export type * from './model.js';
export { buildDomainXml, validateDomainModel } from './build.js';
export {
  domainModelFor,
  OVMF_CODE_PATH,
  OVMF_VARS_TEMPLATE_PATH,
  XEN_HVMLOADER_PATH,
  XEN_PYGRUB_PATH,
  type DirectKernelBoot,
  type DomainBootInput,
  type DomainDiskLayout,
  type DomainInput,
} from './defaults.js';
export { readDomainFacts, type DomainFacts } from './facts.js';
