// A second portcullis process writing the same hosts.deny: adds its targets one rewrite each.
import { editHostsText } from '../../../../src/actions/hostsdeny/hosts-file.js';
import { rewriteLockedFile } from '../../../../src/actions/hostsdeny/locked-file.js';

const [file, marker, count] = process.argv.slice(2) as [string, string, string];
for (let i = 0; i < Number(count); i++) {
  const target = `203.0.113.${i}`;
  await rewriteLockedFile(file, (text) => editHostsText(text ?? '', marker, 'sshd', { add: [target] }).text);
}
